// The tour's colour rules (gated.viz.style): gates in (0, 1) on the sequential viridis map, signed states on
// the diverging red-blue map centred on 0. Eleven stops of each map, interpolated linearly.
"use strict";
(function () {
  const VIRIDIS = ["#440154", "#482475", "#414487", "#355f8d", "#2a788e", "#21918c", "#22a884", "#44bf70",
    "#7ad151", "#bddf26", "#fde725"];
  const RDBU_R = ["#053061", "#2065ab", "#4393c3", "#90c4dd", "#d1e5f0", "#f7f6f6", "#fddbc7", "#f3a481",
    "#d6604d", "#b1182b", "#67001f"];
  const rgb = (hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  const maps = { gate: VIRIDIS.map(rgb), state: RDBU_R.map(rgb) };

  // x in [0, 1] -> [r, g, b]
  function sample(stops, x) {
    if (!Number.isFinite(x)) return [221, 221, 221];
    const t = Math.min(1, Math.max(0, x)) * (stops.length - 1);
    const i = Math.min(stops.length - 2, Math.floor(t));
    const f = t - i;
    return stops[i].map((c, k) => Math.round(c + (stops[i + 1][k] - c) * f));
  }

  // A gate's value v in (0, 1), or a state's v in (-bound, bound) centred on 0.
  function color(kind, v, bound) {
    if (kind === "gate") return sample(maps.gate, v);
    return sample(maps.state, 0.5 + v / (2 * (bound || 1)));
  }

  const css = (c) => `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
  // Dark text on light colours, light text on dark ones (relative luminance).
  const ink = (c) => (0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2] > 140 ? "#111" : "#fff");

  window.GatedColors = { color, sample, css, ink, viridis: (x) => sample(maps.gate, x) };
})();
