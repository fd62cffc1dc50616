// Bytes of an item's files: what they are, zip archives in and out, saving to the computer.
//
// Theory of operation
// -------------------
// * kindOf(bytes) sniffs a data file: "image" (PNG, JPEG, GIF, WebP signatures),
//   "zip" (a ``.csv_zip`` of COMPRESS=1: PROTOCOL.md section 6, one ``.csv`` inside),
//   else "text".  The inbox never says a file's type, and the viewer needs none.
// * unzipFirst() reads the first member of a zip archive through its central
//   directory: stored, or deflated (DecompressionStream "deflate-raw"); its CRC-32 is
//   checked.  zipFiles() writes an archive of stored members (no compression: the
//   report files are small next to what the browser can hold), each with its CRC-32,
//   so "Save" hands the user one file holding the data and its metadata.
// * saveBytes() gives the browser a file to download (an object URL on an <a
//   download>, revoked afterwards) -- no markup, no navigation of the page.

const encoder = new TextEncoder();

const SIGNATURES = [
  [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], // PNG
  [0xff, 0xd8, 0xff], // JPEG
  [0x47, 0x49, 0x46, 0x38], // GIF8
];

function startsWith(bytes, signature) {
  return signature.every((b, i) => bytes[i] === b);
}

/** "image", "zip" or "text". */
export function kindOf(bytes) {
  if (SIGNATURES.some((s) => startsWith(bytes, s))) return "image";
  if (startsWith(bytes, [0x52, 0x49, 0x46, 0x46]) && startsWith(bytes.subarray(8), [0x57, 0x45, 0x42, 0x50])) return "image";
  if (startsWith(bytes, [0x50, 0x4b, 0x03, 0x04])) return "zip";
  return "text";
}

let table = null;

/** CRC-32 (IEEE, as zip uses it). */
export function crc32(bytes) {
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = table[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** The archive is not one this reader takes. */
export class ZipError extends Error {}

/**
 * The first member of a zip archive: {name, bytes}.
 * @param {Uint8Array} bytes
 * @returns {Promise<{name: string, bytes: Uint8Array}>}
 */
export async function unzipFirst(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let end = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 65535); i--) {
    if (view.getUint32(i, true) === 0x06054b50) {
      end = i;
      break;
    }
  }
  if (end < 0) throw new ZipError("no end of central directory");
  const central = view.getUint32(end + 16, true);
  if (view.getUint32(central, true) !== 0x02014b50) throw new ZipError("no central directory entry");
  const method = view.getUint16(central + 10, true);
  const crc = view.getUint32(central + 16, true);
  const size = view.getUint32(central + 20, true);
  const nameLength = view.getUint16(central + 28, true);
  const local = view.getUint32(central + 42, true);
  const name = new TextDecoder().decode(bytes.subarray(central + 46, central + 46 + nameLength));
  if (view.getUint32(local, true) !== 0x04034b50) throw new ZipError("no local header");
  const start = local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
  const packed = bytes.subarray(start, start + size);
  let data;
  if (method === 0) {
    data = packed.slice();
  } else if (method === 8) {
    const stream = new Blob([packed]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
    data = new Uint8Array(await new Response(stream).arrayBuffer());
  } else {
    throw new ZipError(`compression method ${method} is not supported`);
  }
  if (crc32(data) !== crc) throw new ZipError("CRC-32 mismatch");
  return { name, bytes: data };
}

/**
 * A zip archive of stored members.
 * @param {{name: string, bytes: Uint8Array}[]} files
 * @param {Date} [when] the members' modification time
 * @returns {Uint8Array}
 */
export function zipFiles(files, when = new Date()) {
  const time = (when.getHours() << 11) | (when.getMinutes() << 5) | (when.getSeconds() >> 1);
  const date = ((when.getFullYear() - 1980) << 9) | ((when.getMonth() + 1) << 5) | when.getDate();
  const parts = [];
  const centrals = [];
  let offset = 0;
  for (const file of files) {
    const name = encoder.encode(file.name);
    const crc = crc32(file.bytes);
    const head = new DataView(new ArrayBuffer(30));
    head.setUint32(0, 0x04034b50, true);
    head.setUint16(4, 20, true);
    head.setUint16(6, 0x0800, true); // UTF-8 names
    head.setUint16(8, 0, true);
    head.setUint16(10, time, true);
    head.setUint16(12, date, true);
    head.setUint32(14, crc, true);
    head.setUint32(18, file.bytes.length, true);
    head.setUint32(22, file.bytes.length, true);
    head.setUint16(26, name.length, true);
    head.setUint16(28, 0, true);
    const central = new DataView(new ArrayBuffer(46));
    central.setUint32(0, 0x02014b50, true);
    central.setUint16(4, 20, true);
    central.setUint16(6, 20, true);
    central.setUint16(8, 0x0800, true);
    central.setUint16(10, 0, true);
    central.setUint16(12, time, true);
    central.setUint16(14, date, true);
    central.setUint32(16, crc, true);
    central.setUint32(20, file.bytes.length, true);
    central.setUint32(24, file.bytes.length, true);
    central.setUint16(28, name.length, true);
    central.setUint32(42, offset, true);
    parts.push(new Uint8Array(head.buffer), name, file.bytes);
    centrals.push(new Uint8Array(central.buffer), name);
    offset += 30 + name.length + file.bytes.length;
  }
  const centralSize = centrals.reduce((n, p) => n + p.length, 0);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, files.length, true);
  end.setUint16(10, files.length, true);
  end.setUint32(12, centralSize, true);
  end.setUint32(16, offset, true);
  const all = [...parts, ...centrals, new Uint8Array(end.buffer)];
  const out = new Uint8Array(all.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of all) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Hand *bytes* to the browser as a download named *name*. */
export function saveBytes(bytes, name, type = "application/octet-stream") {
  const url = URL.createObjectURL(new Blob([bytes], { type }));
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** Text of a UTF-8 file (replacement characters for bytes that are not UTF-8). */
export function textOf(bytes) {
  return new TextDecoder("utf-8").decode(bytes);
}
