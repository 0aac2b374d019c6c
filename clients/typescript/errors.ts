/**
 * `StewardError`: an answer of 400 or more, read from Steward's error envelope
 * `{ success: false, error: { code, message, details?, request_id } }`.
 */

export class StewardError extends Error {
  override readonly name = "StewardError";

  constructor(
    /** The HTTP status. */
    readonly status: number,
    /** Steward's error code (`BAD_REQUEST`, `NOT_FOUND`, …), or `HTTP_<status>` without an envelope. */
    readonly code: string,
    message: string,
    /** For `BAD_REQUEST`: the validation issues, each with its path; otherwise what the code adds. */
    readonly details: unknown,
    /** The request's id (the envelope's, else `X-Request-Id`), to quote to Steward's operators. */
    readonly request_id: string | null,
  ) {
    super(message);
  }

  /** Reads the error out of `response` (consumes its body). */
  static async from(response: Response): Promise<StewardError> {
    const text = await response.text().catch(() => "");
    let error: Record<string, unknown> | undefined;
    try {
      const parsed = JSON.parse(text);
      if (parsed?.error && typeof parsed.error === "object") error = parsed.error;
    } catch {
      // Not JSON (a proxy's page): the status speaks for it.
    }
    const str = (v: unknown) => (typeof v === "string" ? v : undefined);
    return new StewardError(
      response.status,
      str(error?.code) ?? `HTTP_${response.status}`,
      str(error?.message) ?? (text.slice(0, 200) || response.statusText ||
        `HTTP ${response.status}`),
      error?.details,
      str(error?.request_id) ?? response.headers.get("X-Request-Id"),
    );
  }
}
