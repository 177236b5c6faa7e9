// A local stand-in for an OpenAI-compatible chat provider: `POST /v1/chat/completions`
// answers with a streamed (SSE) document in the documentation agent's layout, citing the
// source labels it was given and quoting the last source, one small delta every 15 ms so a page can watch the
// tokens arrive; asked for a code change (the codegen agent's prompt), it answers `change`
// (plan, explanation, diff) as the JSON object that agent asks for; `GET /v1/models` lists the
// model. Records every request.
import http from "node:http";

export async function startFakeOpenAI({ change } = {}) {
  const seen = [];
  const server = http.createServer(async (req, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    seen.push({ method: req.method, url: req.url, body });
    if (req.method === "GET" && req.url === "/v1/models") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ object: "list", data: [{ id: "fake-model", object: "model" }] }));
      return;
    }
    if (req.method !== "POST" || req.url !== "/v1/chat/completions") {
      res.writeHead(404).end();
      return;
    }
    const request = JSON.parse(body);
    const prompt = request.messages.map((m) => m.content).join("\n");
    // The sources arrive as "[n] [path:a-b]\n<text>\n\n"; cite them and quote the last one.
    const sources = [...prompt.matchAll(/\[\d+\] \[([^\]\s]+:\d+-\d+)\]\n([\s\S]*?)\n\n(?=\[\d+\] \[|Question:)/g)];
    const label = sources.map((m) => `[${m[1]}]`).join(" ") || "(no sources)";
    const quoted = sources.at(-1)?.[2] ?? "";
    const title = /Question:\s*(.+)/.exec(prompt)?.[1] ?? "The answer";
    const text = [
      `# ${title}`,
      "",
      "## Overview",
      "",
      `Sessions are checked by the \`authenticate\` function before a handler runs ${label}.`,
      "",
      "## Key components",
      "",
      "### authenticate",
      "",
      `It reads the bearer token and looks the session up ${label}.`,
      "",
      "## Code examples",
      "",
      "```rust",
      quoted,
      "```",
      "",
      "## Related documentation",
      "",
      `See the sources ${label}.`,
      "",
      "## Troubleshooting",
      "",
      "A 401 means the token expired: refresh it.",
      "",
    ].join("\n");
    const content = change && prompt.includes("You change a code base") ? JSON.stringify(change) : text;
    const pieces = content.match(/[\s\S]{1,24}/g) ?? [];
    const chunk = (delta, finish = null) =>
      JSON.stringify({
        id: "chatcmpl-e2e",
        object: "chat.completion.chunk",
        created: 1,
        model: "fake-model",
        choices: [{ index: 0, delta, finish_reason: finish }],
      });
    if (!request.stream) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          id: "chatcmpl-e2e",
          object: "chat.completion",
          created: 1,
          model: "fake-model",
          choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
          usage: { prompt_tokens: 300, completion_tokens: 120, total_tokens: 420 },
        }),
      );
      return;
    }
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    res.write(`data: ${chunk({ role: "assistant", content: "" })}\n\n`);
    for (const p of pieces) {
      res.write(`data: ${chunk({ content: p })}\n\n`);
      await new Promise((r) => setTimeout(r, 15));
    }
    res.write(`data: ${chunk({}, "stop")}\n\n`);
    res.write(
      `data: ${JSON.stringify({ id: "chatcmpl-e2e", object: "chat.completion.chunk", created: 1, model: "fake-model", choices: [], usage: { prompt_tokens: 300, completion_tokens: 120, total_tokens: 420 } })}\n\n`,
    );
    res.end("data: [DONE]\n\n");
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${server.address().port}/v1`, seen, close: () => server.close() };
}
