// A strict-enough well-formedness check of the SVG the report writes (no XML parser among the project's
// dependencies): tags nest and close, attributes are quoted, text holds no raw `<` and every `&` starts an
// entity. It returns the problem found, or undefined.
const NAME = /^[A-Za-z][\w:.-]*$/;
const ATTRS = /^(\s+[A-Za-z][\w:.-]*="[^"<]*")*\s*$/;
const ENTITY = /&(?:[a-z]+|#\d+|#x[0-9a-f]+);/gi;

/** Undefined when `xml` is well formed, else what is wrong and where. */
export function xmlProblem(xml: string): string | undefined {
  const stack: string[] = [];
  let i = 0;
  let roots = 0;
  while (i < xml.length) {
    const lt = xml.indexOf("<", i);
    const textPart = xml.slice(i, lt < 0 ? xml.length : lt);
    if (textPart.replace(ENTITY, "").includes("&"))
      return `unescaped & near offset ${i}: ${textPart.slice(0, 60)}`;
    if (textPart.trim() && stack.length === 0) return `text outside the root element at offset ${i}`;
    if (lt < 0) break;
    const gt = xml.indexOf(">", lt);
    if (gt < 0) return `unterminated tag at offset ${lt}`;
    const tag = xml.slice(lt + 1, gt);
    if (tag.startsWith("?") || tag.startsWith("!--")) {
      i = gt + 1;
      continue;
    }
    if (tag.startsWith("/")) {
      const name = tag.slice(1).trim();
      const open = stack.pop();
      if (open !== name) return `</${name}> at offset ${lt} closes <${open ?? "nothing"}>`;
    } else {
      const selfClosing = tag.endsWith("/");
      const body = selfClosing ? tag.slice(0, -1) : tag;
      const name = body.split(/\s/, 1)[0]!;
      if (!NAME.test(name)) return `bad tag name '${name}' at offset ${lt}`;
      const attrs = body.slice(name.length);
      if (!ATTRS.test(attrs)) return `bad attributes in <${name}> at offset ${lt}: ${attrs.slice(0, 80)}`;
      if (attrs.replace(ENTITY, "").includes("&"))
        return `unescaped & in an attribute of <${name}> at offset ${lt}`;
      if (stack.length === 0) roots++;
      if (!selfClosing) stack.push(name);
    }
    i = gt + 1;
  }
  if (stack.length) return `unclosed <${stack.join("> <")}>`;
  if (roots !== 1) return `${roots} root elements`;
  return undefined;
}
