/** An RFC 9457 problem from the API, or status 0 when the server could not be reached. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
  ) {
    super(detail || title);
    this.name = 'ApiError';
  }

  /** Worth trying again later: the server or the network, not the request. */
  get transient(): boolean {
    return this.status === 0 || this.status === 429 || this.status === 401 || this.status >= 500;
  }

  static async from(response: Response): Promise<ApiError> {
    let body: { title?: string; detail?: string } = {};
    try {
      body = await response.json();
    } catch {
      // not JSON: keep the status line
    }
    return new ApiError(
      response.status,
      body.title ?? response.statusText,
      body.detail ?? body.title ?? `HTTP ${response.status}`,
    );
  }

  static offline(): ApiError {
    return new ApiError(0, 'Offline', 'the server cannot be reached; retrying when it can');
  }
}
