/**
 * Formats rows as a plain-text table with a header, columns padded to their widest cell (as kubectl prints).
 *
 * @example
 * formatTable(['MODEL', 'VERSION'], [['mnist-mlp', '1']]);
 * // MODEL      VERSION
 * // mnist-mlp  1
 */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}
