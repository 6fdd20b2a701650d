/**
 * A plotly.js figure as plain JSON: what every builder in src/viz returns, what reports inline and
 * what notebooks display. Keeping it data-only (no plotly import) lets library code build figures
 * without a browser and lets tests inspect them.
 * plotly.js figure reference: https://plotly.com/javascript/reference/
 */
export interface PlotlyTrace {
  type?: string;
  [key: string]: unknown;
}

export interface Figure {
  data: PlotlyTrace[];
  layout?: Record<string, unknown>;
  config?: Record<string, unknown>;
  /**
   * The traces' `customdata` hold PNG data URLs (thumbnails); reports and notebooks show the
   * hovered point's picture next to the cursor. Not passed to plotly.
   */
  hoverImages?: boolean;
}
