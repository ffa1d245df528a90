// Uploads a file to Chat4All with tus-js-client, as a browser or Node app would.
// Usage: node upload.mjs ENDPOINT TOKEN FILE CONVERSATION_ID CHUNK_SIZE [STOP_AT_FRACTION] [UPLOAD_URL]
// Prints one JSON line: {"event": "stopped" | "success" | "error", "url", "offset", ...}.
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import * as tus from "tus-js-client";

const [endpoint, token, file, conversationId, chunkSize, stopAt, uploadUrl] = process.argv.slice(2);
const data = readFileSync(file);
const stopFraction = stopAt ? Number(stopAt) : null;

const upload = new tus.Upload(data, {
  endpoint,
  uploadUrl: uploadUrl || null,
  chunkSize: Number(chunkSize),
  uploadDataDuringCreation: true,
  retryDelays: [],
  headers: { Authorization: `Bearer ${token}` },
  metadata: { filename: basename(file), filetype: "application/octet-stream", conversation_id: conversationId },
  onProgress(sent, total) {
    if (stopFraction !== null && sent >= total * stopFraction && sent < total) {
      // Like a tab closed mid-upload: the request in flight is cut.
      upload.abort(false).then(() => {
        console.log(JSON.stringify({ event: "stopped", url: upload.url, sent }));
        process.exit(0);
      });
    }
  },
  onError(error) {
    console.log(JSON.stringify({ event: "error", message: String(error) }));
    process.exit(1);
  },
  onSuccess() {
    console.log(JSON.stringify({ event: "success", url: upload.url }));
  },
});
upload.start();
