/**
 * ImageNet-C's digital corruptions, brightness and saturate (Hendrycks & Dietterich 2019,
 * https://arxiv.org/abs/1903.12261), parameters of the reference's make_imagenet_c.py
 * (github.com/hendrycks/robustness):
 *
 *   brightness         HSV value + c, clipped (skimage's float HSV)
 *   contrast           per channel: mean + c (x - mean), means over the image
 *   elastic_transform  an affine warp moving three points (the corners of a square of a third of
 *                      the side about the centre) by up to `affine` px each, border reflect101;
 *                      then a displacement field: uniform(-1, 1) noise smoothed by a gaussian of
 *                      `sigma` (truncated at 3 sigma, border reflect) times `alpha`, applied
 *                      bilinearly with border reflect
 *   pixelate           Pillow's BOX resize down to floor(c * side) and back up (src/image/pil_box.ts)
 *   jpeg_compression   JPEG at quality c with 4:2:0 chroma, as Pillow saves it
 *                      (src/image/jpeg_quantise.ts)
 *   saturate           (extra) HSV saturation * a + b, clipped
 *
 * Elastic at other sizes (f = S / 224): affine, alpha and sigma x f, and the white noise under
 * the smoothing is drawn with its amplitude x f (the area average of the reference's 224 px
 * noise over one pixel of the image), so the displacement field is the reference's, resized, and
 * its displacements in pixels scale by f. Its table is the reference's, written as 244 * k there
 * ("244 should have been 224, but ultimately nothing is incorrect"): severities 1-2 are mostly
 * a strong affine warp, 3-5 a local one, so the change to the image is not monotone in severity
 * (AlexNet's errors in hendrycks/robustness issue 10: 52.6, 70.1, 55.7, 64.1, 80.6%).
 */
import { clipAll01, mapPlanes, mapValues } from "../../image/planes";
import { pilBoxResize } from "../../image/pil_box";
import { rgbToHsv01, hsvToRgb01 } from "../../image/hsv";
import { jpegRoundTrip } from "../../image/jpeg_quantise";
import { gaussianBlur } from "../../image/filters";
import { affineFromPoints, displace, warpAffine, type Affine } from "../../image/warp";
import { single, sizeFactor, tuple, type CorruptionImpl } from "./corruption_spec";

/** Clamp to [0, 1] (local: hot loops call it per value). */
const clip01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);

const PER_VALUE = "per pixel value: as given at every size";

export const IMAGENET_C_DIGITAL: CorruptionImpl[] = [
  {
    name: "brightness",
    set: "imagenet-c",
    seedId: 110,
    parameter: "value added to the HSV value (V), clipped to [0, 1]",
    severities: [0.1, 0.2, 0.3, 0.4, 0.5],
    scaling: PER_VALUE,
    apply: (img, _h, _w, c) => {
      const hsv = rgbToHsv01(img);
      for (let i = 2; i < hsv.length; i += 3) hsv[i] = clip01(hsv[i] + single(c));
      img.set(clipAll01(hsvToRgb01(hsv)));
    },
  },
  {
    name: "contrast",
    set: "imagenet-c",
    seedId: 111,
    parameter: "contrast factor c: mean + c (x - mean), per channel, means over the image",
    severities: [0.4, 0.3, 0.2, 0.1, 0.05],
    scaling: PER_VALUE,
    apply: (img, h, w, param) => {
      const c = single(param);
      const n = h * w;
      for (let k = 0; k < 3; k++) {
        let mean = 0;
        for (let i = 0; i < n; i++) mean += img[3 * i + k];
        mean /= n;
        for (let i = 0; i < n; i++) img[3 * i + k] = clip01((img[3 * i + k] - mean) * c + mean);
      }
    },
  },
  {
    name: "elastic_transform",
    set: "imagenet-c",
    seedId: 112,
    parameter: "displacement scale alpha, its smoothing sigma, and the affine jitter, in pixels of a 224 px image (the reference's 244 * k)",
    parameterNames: ["alpha", "sigma", "affine"],
    severities: [
      [244 * 2, 244 * 0.7, 244 * 0.1],
      [244 * 2, 244 * 0.08, 244 * 0.2],
      [244 * 0.05, 244 * 0.01, 244 * 0.02],
      [244 * 0.07, 244 * 0.01, 244 * 0.02],
      [244 * 0.12, 244 * 0.01, 244 * 0.02],
    ],
    scaling: "alpha, sigma and the affine jitter x f; the smoothed noise's amplitude x f (the displacement field resized)",
    scaled: (p, h, w) => tuple(p).map((v) => v * sizeFactor(h, w)),
    apply: (img, h, w, param, rng) => {
      const [alpha, sigma, jitter] = tuple(param);
      const f = sizeFactor(h, w);
      const cy = Math.floor(h / 2);
      const cx = Math.floor(w / 2);
      const side = Math.floor(Math.min(h, w) / 3);
      const from: [number, number][] = [[cx + side, cy + side], [cx + side, cy - side], [cx - side, cy - side]];
      const to = from.map(([x, y]) => [x + jitter * (2 * rng.next() - 1), y + jitter * (2 * rng.next() - 1)] as [number, number]);
      const m: Affine = affineFromPoints(from, to);
      const field = () => {
        const noise = new Float32Array(h * w);
        for (let i = 0; i < noise.length; i++) noise[i] = f * (2 * rng.next() - 1);
        return mapValues(gaussianBlur(noise, h, w, sigma, { truncate: 3, border: "reflect" }), (v) => v * alpha);
      };
      const dx = field();
      const dy = field();
      mapPlanes(img, h, w, 3, (p) => clipAll01(displace(warpAffine(p, h, w, m, "reflect101"), h, w, dy, dx, "reflect")));
    },
  },
  {
    name: "pixelate",
    set: "imagenet-c",
    seedId: 113,
    parameter: "side of the downsampled image as a fraction c of the original (floor), Pillow's BOX filter down and up",
    severities: [0.6, 0.5, 0.4, 0.3, 0.25],
    scaling: "relative to the image: as given",
    apply: (img, h, w, param) => {
      const c = single(param);
      const nh = Math.max(1, Math.floor(h * c));
      const nw = Math.max(1, Math.floor(w * c));
      mapPlanes(img, h, w, 3, (p) => pilBoxResize(pilBoxResize(p, h, w, nh, nw), nh, nw, h, w));
    },
  },
  {
    name: "jpeg_compression",
    set: "imagenet-c",
    seedId: 114,
    parameter: "JPEG quality (IJG scale 1-100, 4:2:0 chroma as Pillow writes it; lower is coarser)",
    severities: [25, 18, 15, 10, 7],
    scaling: "8x8 blocks of pixels: as given (JPEG's block size is in pixels at every size)",
    apply: (img, h, w, q) => jpegRoundTrip(img, 1, h, w, single(q), { subsampling: "4:2:0" }),
  },
  {
    name: "saturate",
    set: "imagenet-c-extra",
    seedId: 118,
    parameter: "HSV saturation (S) * a + b, clipped to [0, 1]",
    parameterNames: ["factor", "offset"],
    severities: [[0.3, 0], [0.1, 0], [2, 0], [5, 0.1], [20, 0.2]],
    scaling: PER_VALUE,
    apply: (img, _h, _w, param) => {
      const [a, b] = tuple(param);
      const hsv = rgbToHsv01(img);
      for (let i = 1; i < hsv.length; i += 3) hsv[i] = clip01(hsv[i] * a + b);
      img.set(clipAll01(hsvToRgb01(hsv)));
    },
  },
];
