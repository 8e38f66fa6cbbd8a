// The approval pages' calls to the console: JSON in and out, the session cookie, the API's errors.

/** An error the console answered with (`{status, error, detail}`), or a session that has ended. */
export class ConsoleError extends Error {}

/**
 * GET or POST `path` with the session cookie; the decoded JSON answer, or a ConsoleError with the
 * console's own words. A session that has ended is redirected to sign-in: said so plainly.
 */
export async function call(path, body) {
  const options = { credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    options.method = "POST";
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch {
    throw new ConsoleError("the console could not be reached; nothing was changed");
  }
  const type = response.headers.get("content-type") || "";
  if (!type.includes("application/json")) {
    throw new ConsoleError("your session has ended: sign in again (nothing was changed)");
  }
  const answer = await response.json();
  if (!response.ok) {
    throw new ConsoleError(answer.detail || answer.error || `the console answered ${response.status}`);
  }
  return answer;
}

/** Set `element`'s text and state class (ok, error, muted). Text only: never HTML. */
export function say(element, state, text) {
  element.className = state;
  element.textContent = text;
}
