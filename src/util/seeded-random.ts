// Seeded random numbers for zoo weights and example inputs. Each tensor draws from its own stream,
// keyed by the seed and the tensor name, so a tensor's values do not depend on generation order and any one can be
// regenerated (or checked) alone.

/** FNV-1a hash of a string to 32 bits. */
function hash32(text: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** A small fast generator (mulberry32): uniform 32-bit outputs, period 2^32 per stream. */
export class SeededRandom {
  private state: number;

  constructor(seed: number, stream = "") {
    this.state = hash32(stream, seed) || 0x9e3779b9;
  }

  /** A uniform number in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Fills `out` with uniform values in [low, high). */
  fillUniform(out: Float32Array, low: number, high: number): void {
    const span = high - low;
    let s = this.state;
    for (let i = 0; i < out.length; i++) {
      let t = (s = (s + 0x6d2b79f5) | 0);
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      out[i] = low + span * (((t ^ (t >>> 14)) >>> 0) / 4294967296);
    }
    this.state = s;
  }
}
