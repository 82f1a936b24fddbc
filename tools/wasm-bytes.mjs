// The wasm binary format's small pieces, for the build tools that read or
// rewrite a module (tools/dead-data.mjs, minify-imports.mjs,
// pack-extension.mjs, wasm-shares.mjs): LEB128 integers read and written,
// names, and the module's sections. Written once here so that every tool
// reads a module the same way.

/** The unsigned LEB128 at `pos` in `buf`: `[value, the position after it]`. */
export function readLeb(buf, pos) {
  let value = 0, shift = 0, byte;
  do {
    byte = buf[pos++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  return [value, pos];
}

/** The signed LEB128 of at most 32 bits at `pos` (an `i32.const`): `[value, the position after it]`. */
export function readSleb(buf, pos) {
  let value = 0, shift = 0, byte;
  do {
    byte = buf[pos++];
    value |= (byte & 0x7f) << shift;
    shift += 7;
  } while (byte & 0x80);
  if (shift < 32 && (byte & 0x40)) value |= -1 << shift;
  return [value, pos];
}

/** A reader that walks `buf` from `pos` on: `leb()`, `sleb()`, `byte()`, and `pos` where it stands. */
export function cursor(buf, pos = 8) {
  const r = {
    pos,
    byte: () => buf[r.pos++],
    leb: () => { let v; [v, r.pos] = readLeb(buf, r.pos); return v; },
    sleb: () => { let v; [v, r.pos] = readSleb(buf, r.pos); return v; },
  };
  return r;
}

/** `n` (≥ 0) as unsigned LEB128. */
export function leb(n) {
  const out = [];
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n) byte |= 0x80;
    out.push(byte);
  } while (n);
  return Buffer.from(out);
}

/** `n` (an i32) as signed LEB128. */
export function sleb(n) {
  const out = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    const done = (n === 0 && !(byte & 0x40)) || (n === -1 && (byte & 0x40));
    out.push(done ? byte : byte | 0x80);
    if (done) return Buffer.from(out);
  }
}

/** The wasm name at `pos`: `[the string, the position after it]`. */
export function readName(buf, pos) {
  const [len, p] = readLeb(buf, pos);
  return [buf.toString('utf8', p, p + len), p + len];
}

/** A wasm name: its UTF-8 length, then its bytes. */
export const name = (s) => Buffer.concat([leb(Buffer.byteLength(s)), Buffer.from(s)]);

/** A section with its id and body. */
export const section = (id, body) => Buffer.concat([Buffer.from([id]), leb(body.length), body]);

/** The module's sections after its 8-byte header, in order: `{ id, from, start, end }`
 * (`from` where the section begins, `start` where its body begins, `end` after it). */
export function sections(buf) {
  const list = [];
  for (let from = 8; from < buf.length;) {
    const [size, start] = readLeb(buf, from + 1);
    list.push({ id: buf[from], from, start, end: start + size });
    from = start + size;
  }
  return list;
}

/** The entries of an import section whose body begins at `start`:
 * `{ module, field, kind, desc }` (`desc` the bytes of its kind and type). */
export function imports(buf, start) {
  let [count, p] = readLeb(buf, start);
  const list = [];
  for (let i = 0; i < count; i++) {
    let module, field;
    [module, p] = readName(buf, p);
    [field, p] = readName(buf, p);
    const descStart = p;
    const kind = buf[p++];
    if (kind === 0) [, p] = readLeb(buf, p); // func: type index
    else if (kind === 1 || kind === 2) { // table (reftype + limits) / memory (limits)
      if (kind === 1) p++;
      const flags = buf[p++];
      [, p] = readLeb(buf, p);
      if (flags & 1) [, p] = readLeb(buf, p);
    } else if (kind === 3) p += 2; // global: valtype, mutability
    else if (kind === 4) { p++; [, p] = readLeb(buf, p); } // tag
    else throw new Error(`unknown import kind ${kind}`);
    list.push({ module, field, kind, desc: buf.subarray(descStart, p) });
  }
  return list;
}

/** The entries of an export section whose body begins at `start`:
 * `{ field, desc }` (`desc` the bytes of its kind and index). */
export function exports(buf, start) {
  let [count, p] = readLeb(buf, start);
  const list = [];
  for (let i = 0; i < count; i++) {
    let field;
    [field, p] = readName(buf, p);
    const descStart = p++;
    [, p] = readLeb(buf, p);
    list.push({ field, desc: buf.subarray(descStart, p) });
  }
  return list;
}
