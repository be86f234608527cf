// Profile names, checked before anything is sent. Mirrors the store's check_name
// (crates/core store.rs: not empty, at most 100 characters, no leading ".", only
// letters, digits, "-", "_", "." and spaces), plus what the other profile dialogs
// refuse (spaces at either end, a name already taken). The engine stays the judge:
// its AppError (field "name") is shown in the same place.

export const MAX_PROFILE_NAME = 100;

/** Why `name` cannot be a new profile's name, or null. `taken`: the existing profiles. */
export function profileNameProblem(name: string, taken: readonly string[]): string | null {
  if (name.trim() === "") return "a profile needs a name";
  if (name.trim() !== name) return "no spaces at the start or end of the name";
  if ([...name].length > MAX_PROFILE_NAME) return `at most ${MAX_PROFILE_NAME} characters`;
  if (/[\\/]/.test(name)) return "no slashes in a profile name";
  if (name.startsWith(".")) return "a profile name cannot start with “.”";
  const bad = [...name].find((c) => !/[\p{L}\p{N} ._-]/u.test(c));
  if (bad !== undefined) return `“${bad}” cannot be used: letters, digits, spaces, “-”, “_” and “.” only`;
  if (taken.includes(name)) return `there is already a profile called “${name}”`;
  return null;
}
