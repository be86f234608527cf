import { describe, expect, it } from "vitest";
import { MAX_PROFILE_NAME, profileNameProblem } from "./profile";

describe("profileNameProblem mirrors the store's check_name", () => {
  const taken = ["default", "office"];

  it("accepts letters, digits, spaces, -, _ and . (not first)", () => {
    for (const ok of ["home", "office 2", "lab_v1.2", "Büro-Ост", "x".repeat(MAX_PROFILE_NAME)]) {
      expect(profileNameProblem(ok, taken), ok).toBeNull();
    }
  });

  it("refuses what the store refuses, and names taken or padded with spaces", () => {
    expect(profileNameProblem("", taken)).toBe("a profile needs a name");
    expect(profileNameProblem(" home", taken)).toBe("no spaces at the start or end of the name");
    expect(profileNameProblem("a/b", taken)).toBe("no slashes in a profile name");
    expect(profileNameProblem("..", taken)).toBe("a profile name cannot start with “.”");
    expect(profileNameProblem(".hidden", taken)).toBe("a profile name cannot start with “.”");
    expect(profileNameProblem("a:b", taken)).toContain("“:” cannot be used");
    expect(profileNameProblem("x".repeat(MAX_PROFILE_NAME + 1), taken)).toBe(`at most ${MAX_PROFILE_NAME} characters`);
    expect(profileNameProblem("office", taken)).toBe("there is already a profile called “office”");
  });
});
