// Result charts as plain SVG (no chart library): a counts histogram and an IQ scatter.

const W = 480;
const H = 220;
const PAD = { left: 40, right: 8, top: 16, bottom: 48 };

/** Bars per bitstring with a count label; an off-screen table carries the numbers for AT. */
export function Histogram({ counts, shots }: { counts: [string, number][]; shots: number }) {
  const max = Math.max(1, ...counts.map(([, v]) => v));
  const innerW = W - PAD.left - PAD.right;
  const innerH = H - PAD.top - PAD.bottom;
  const slot = innerW / counts.length;
  const bar = Math.max(2, Math.min(48, slot * 0.7));
  const showLabels = counts.length <= 32;
  return (
    <figure className="chart" data-testid="histogram">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`Counts histogram over ${shots} shots`}>
        <line x1={PAD.left} y1={PAD.top + innerH} x2={W - PAD.right} y2={PAD.top + innerH} className="axis" />
        {[0, 0.5, 1].map((f) => (
          <g key={f}>
            <line x1={PAD.left} x2={W - PAD.right} y1={PAD.top + innerH * (1 - f)} y2={PAD.top + innerH * (1 - f)} className="grid" />
            <text x={PAD.left - 6} y={PAD.top + innerH * (1 - f) + 4} textAnchor="end" className="tick">
              {Math.round(max * f)}
            </text>
          </g>
        ))}
        {counts.map(([key, value], i) => {
          const h = (value / max) * innerH;
          const x = PAD.left + slot * i + (slot - bar) / 2;
          return (
            <g key={key} className="bar" data-state={key} data-count={value}>
              <rect x={x} y={PAD.top + innerH - h} width={bar} height={h} rx={2} />
              {showLabels && (
                <>
                  <text x={x + bar / 2} y={PAD.top + innerH - h - 4} textAnchor="middle" className="value">
                    {value}
                  </text>
                  <text
                    x={x + bar / 2}
                    y={PAD.top + innerH + 14}
                    textAnchor={counts.length > 8 ? "end" : "middle"}
                    transform={counts.length > 8 ? `rotate(-45 ${x + bar / 2} ${PAD.top + innerH + 14})` : undefined}
                    className="tick mono"
                  >
                    {key}
                  </text>
                </>
              )}
            </g>
          );
        })}
      </svg>
      <table className="sr-only">
        <caption>Counts per measured state</caption>
        <thead>
          <tr>
            <th scope="col">State</th>
            <th scope="col">Count</th>
          </tr>
        </thead>
        <tbody>
          {counts.map(([key, value]) => (
            <tr key={key}>
              <td>{key}</td>
              <td>{value}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </figure>
  );
}

const SERIES_CLASSES = ["s0", "s1", "s2", "s3", "s4", "s5"];
const MAX_POINTS = 4000;

/** IQ plane scatter, one colour per qubit/clbit; large runs are thinned evenly for drawing. */
export function IqScatter({ series }: { series: [number, number][][] }) {
  const all = series.flat();
  const xs = all.map(([i]) => i);
  const ys = all.map(([, q]) => q);
  const [minX, maxX] = [Math.min(...xs), Math.max(...xs)];
  const [minY, maxY] = [Math.min(...ys), Math.max(...ys)];
  const spanX = maxX - minX || 1;
  const spanY = maxY - minY || 1;
  const size = 320;
  const pad = 36;
  const sx = (v: number) => pad + ((v - minX) / spanX) * (size - 2 * pad);
  const sy = (v: number) => size - pad - ((v - minY) / spanY) * (size - 2 * pad);
  const stride = Math.max(1, Math.ceil(all.length / MAX_POINTS));
  return (
    <figure className="chart" data-testid="iq-scatter">
      <svg viewBox={`0 0 ${size} ${size}`} role="img" aria-label={`IQ scatter of ${all.length} points`} className="square">
        <rect x={pad} y={pad} width={size - 2 * pad} height={size - 2 * pad} className="frame" />
        <text x={size / 2} y={size - 8} textAnchor="middle" className="tick">
          I
        </text>
        <text x={10} y={size / 2} className="tick">
          Q
        </text>
        {series.map((points, s) => (
          <g key={s} className={`series ${SERIES_CLASSES[s % SERIES_CLASSES.length]}`}>
            {points
              .filter((_, i) => i % stride === 0)
              .map(([i, q], k) => (
                <circle key={k} cx={sx(i)} cy={sy(q)} r={2} />
              ))}
          </g>
        ))}
      </svg>
      <figcaption className="legend">
        {series.map((points, s) => (
          <span key={s} className={`legend-item ${SERIES_CLASSES[s % SERIES_CLASSES.length]}`}>
            qubit {s} ({points.length} shots)
          </span>
        ))}
      </figcaption>
    </figure>
  );
}
