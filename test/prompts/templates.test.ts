/** Template sets as data files, and every bad-input error of the prompt path. */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { Clip } from "../../src/model/clip";
import { zeroShotClassifier } from "../../src/eval/zero_shot";
import { checkClassNames, checkPromptsFit, fillPrompt, listTemplateSets, loadTemplateSet, promptTokenCount, resolveTemplates } from "../../src/text/templates";
import { encodePromptBank } from "../../src/prompts/prompt_bank";
import { CaptionSet } from "../../src/data/captions";
import { assertThrowsOneLine } from "../helpers/errors";
import { tmpDir } from "../helpers/fixtures";
import { useTestBackend } from "../eval/fake_clip";

before(useTestBackend);

function writeJson(value: unknown, name = "set.json"): string {
  const file = path.join(tmpDir(), name);
  fs.writeFileSync(file, typeof value === "string" ? value : JSON.stringify(value));
  return file;
}

describe("shipped template sets", () => {
  it("plain, imagenet7, imagenet80 and fashion load with the documented sizes", () => {
    assert.deepEqual(listTemplateSets(), ["fashion", "imagenet7", "imagenet80", "plain"]);
    assert.deepEqual(loadTemplateSet("plain").templates, ["a photo of a {}."]);
    const i80 = loadTemplateSet("imagenet80").templates;
    assert.equal(i80.length, 80);
    assert.equal(new Set(i80).size, 80);
    assert.ok(i80.includes("a photo of a {}.") && i80.includes("itap of my {}.") && i80.includes("a tattoo of the {}."));
    const i7 = loadTemplateSet("imagenet7").templates;
    assert.deepEqual(i7, ["itap of a {}.", "a bad photo of the {}.", "a origami {}.", "a photo of the large {}.", "a {} in a video game.", "art of the {}.", "a photo of the small {}."]);
    for (const t of i7) assert.ok(i80.includes(t), `${t} is one of the 80`);
  });

  it("the fashion set shares no template with the training or evaluation captions", () => {
    const fashion = loadTemplateSet("fashion").templates;
    const spec = CaptionSet.load().spec;
    assert.ok(fashion.length >= 5);
    for (const t of fashion) assert.ok(!spec.trainTemplates.includes(t) && !spec.evalTemplates.includes(t), t);
  });

  it("every shipped prompt with every Fashion-MNIST class fits ViT-Tiny-28's 16-token context", () => {
    const names = CaptionSet.load().spec.classes.map((c) => c.canonical);
    for (const set of listTemplateSets()) checkPromptsFit(names, loadTemplateSet(set).templates, 16, "test");
  });
});

describe("template files: one-line errors naming the file and template", () => {
  it("a template without {} or with two", () => {
    const file = writeJson({ description: "x", templates: ["a photo of a {}.", "a photo."] });
    assertThrowsOneLine(() => loadTemplateSet(file), new RegExp(`${file.replace(/[.]/g, "\\.")}: template 1 "a photo\\." must contain exactly one "\\{\\}".*found 0`));
    assertThrowsOneLine(() => loadTemplateSet(writeJson(["{} and {}"])), /template 0 "\{\} and \{\}" must contain exactly one/);
  });

  it("empty list, duplicates, unknown fields, bad JSON, missing file, unknown set name", () => {
    assertThrowsOneLine(() => loadTemplateSet(writeJson({ templates: [] })), /templates must be a non-empty array/);
    assertThrowsOneLine(() => loadTemplateSet(writeJson(["a {}.", "a {}."])), /template 1 "a \{\}\." appears twice/);
    assertThrowsOneLine(() => loadTemplateSet(writeJson({ templates: ["a {}."], extra: 1 })), /unknown field "extra"; valid fields: description, source, templates/);
    assertThrowsOneLine(() => loadTemplateSet(writeJson("{not json")), /set\.json: .*JSON/);
    assertThrowsOneLine(() => loadTemplateSet("/nonexistent/t.json"), /\/nonexistent\/t\.json: file not found/);
    assertThrowsOneLine(() => loadTemplateSet("imagenet81"), /unknown template set "imagenet81"; valid sets: fashion, imagenet7, imagenet80, plain/);
    assertThrowsOneLine(() => resolveTemplates(["no slot"], "myTemplates"), /myTemplates: template 0 "no slot"/);
  });

  it("a plain JSON array is a valid file too", () => {
    const set = loadTemplateSet(writeJson(["a {}.", "the {}!"], "mine.json"));
    assert.equal(set.name, "mine");
    assert.deepEqual(set.templates, ["a {}.", "the {}!"]);
  });
});

describe("class names and context length", () => {
  it("empty class lists and bad names are one-line errors", () => {
    assertThrowsOneLine(() => checkClassNames([], "f"), /f: classNames must be a non-empty array/);
    assertThrowsOneLine(() => checkClassNames(["a", ""], "f"), /class name 1 must be a non-empty string/);
    assertThrowsOneLine(() => checkClassNames(["a", "a"], "f"), /class name 1 "a" appears twice/);
  });

  it("a class name that tokenizes past the context length names the class, template and length", () => {
    const long = "very ".repeat(20) + "long coat";
    assert.ok(promptTokenCount(fillPrompt("a {}.", long)) > 16);
    assertThrowsOneLine(
      () => checkPromptsFit(["coat", long], ["a {}."], 16, "f"),
      /f: class name "very very .*long coat" in template "a \{\}\." tokenizes to 26 tokens \(with SOT\/EOT\), more than the model's context length 16/,
    );
    const clip = Clip.create("ViT-Tiny-28", { seed: 0 });
    try {
      // The default tokenizer refuses instead of silently cutting off the class name.
      assertThrowsOneLine(() => zeroShotClassifier(clip, ["coat", long], ["a photo of a {}."]), /zeroShotClassifier: class name "very/);
      assertThrowsOneLine(() => encodePromptBank(clip, ["coat", long], ["a photo of a {}."]), /encodePromptBank: class name "very/);
      assertThrowsOneLine(() => encodePromptBank(clip, [], ["a photo of a {}."]), /classNames must be a non-empty array/);
      assertThrowsOneLine(() => encodePromptBank(clip, ["coat"], ["a photo"]), /template 0 "a photo" must contain exactly one/);
    } finally {
      clip.dispose();
    }
  });

  it("fillPrompt inserts the class literally", () => {
    assert.equal(fillPrompt("a {} here", "$& x"), "a $& x here");
  });
});
