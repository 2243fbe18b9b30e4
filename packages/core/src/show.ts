/**
 * A caller's value as an error message prints it: JSON where it has one (cut at 80 characters),
 * else its String, else its type. It never throws, whatever the value (a Symbol, a BigInt, an
 * object without a prototype or with a throwing toString), so a bad argument always gets its coded
 * error and never a TypeError from the message.
 */
export function show(v: unknown): string {
  try {
    if (typeof v === 'bigint') return `${v}n`;
    if (typeof v === 'number') return String(v);
    const j = JSON.stringify(v);
    if (j !== undefined) return j.length > 80 ? `${j.slice(0, 77)}...` : j;
  } catch {
    // Cyclic, or a toJSON that throws: fall through.
  }
  try {
    return String(v);
  } catch {
    return `a ${typeof v}`;
  }
}
