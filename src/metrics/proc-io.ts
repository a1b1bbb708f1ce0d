// The bytes this process has read from storage (/proc/self/io `read_bytes`): reads and page faults of
// mapped files alike, as the block layer counted them; pages found in the page cache cost nothing. A
// request's difference says what its execution had to read again: nothing for a warm model whose weights
// are resident, the weights it faulted back in for one larger than memory.
import { readFileSync } from "node:fs";

/** Bytes read from storage by this process so far, or undefined where /proc does not say. */
export function storageReadBytes(): number | undefined {
  try {
    const found = /^read_bytes:\s*(\d+)/m.exec(readFileSync("/proc/self/io", "utf8"))?.[1];
    return found === undefined ? undefined : Number(found);
  } catch {
    return undefined;
  }
}
