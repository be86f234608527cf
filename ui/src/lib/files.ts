// Reading a dropped or chosen file's text for import.

/** Profiles are small text files; anything bigger is surely the wrong file. */
export const MAX_IMPORT_BYTES = 5 * 1024 * 1024;

export async function readFileText(file: File): Promise<string> {
  if (file.size > MAX_IMPORT_BYTES) {
    throw new Error(`${file.name} is ${Math.round(file.size / 1024 / 1024)} MiB; a GOST profile is a small text file`);
  }
  if (typeof file.text === "function") return file.text();
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result ?? ""));
    r.onerror = () => reject(r.error ?? new Error(`could not read ${file.name}`));
    r.readAsText(file);
  });
}

/** "office-vpn.yaml" → "office-vpn"; a usable profile name from a file name. */
export function profileNameFromFile(fileName: string | null): string {
  if (!fileName) return "imported";
  const base = fileName.split(/[\\/]/).pop() ?? fileName;
  const stem = base.replace(/\.(ya?ml|json|txt|conf|sh)$/i, "").trim();
  const clean = stem.replace(/[^\p{L}\p{N}._-]+/gu, "-").replace(/^[.-]+|-+$/g, "");
  return clean || "imported";
}
