// The MCP TypeScript SDK (@modelcontextprotocol/sdk) during one call: list the tools, look the
// caller up, log a lead. Run by ./node (Node 22 and the SDK from npm):
//   tests/e2e/clients/node mcp_typescript_sdk.mjs --url URL --header "X-API-Key: ..." ... --phone +14155550100
// Prints one JSON document. The part between the markers is the README's example, word for word.
import { parseArgs } from "node:util";

// README: begin
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

async function takeTheCall(url, headers, phone) {
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
  const client = new Client({ name: "receptionist", version: "1.0.0" });
  await client.connect(transport);
  try {
    const { tools } = await client.listTools();
    const contact = await client.callTool({ name: "lookup_contact", arguments: { phone_number: phone } });
    const lead = await client.callTool({ name: "create_lead", arguments: { name: "Jane Doe", intent: "Delivery date of order 1001" } });
    return { tools, contact, lead }; // content[0].text for the model; structuredContent as data
  } finally {
    await client.close();
  }
}
// README: end

const { values } = parseArgs({
  options: { url: { type: "string" }, header: { type: "string", multiple: true, default: [] }, phone: { type: "string" } },
});
const headers = Object.fromEntries(
  values.header.map((h) => [h.slice(0, h.indexOf(":")).trim(), h.slice(h.indexOf(":") + 1).trim()]),
);
const result = (r) => ({
  is_error: r.isError ?? false,
  text: r.content.filter((c) => c.type === "text").map((c) => c.text).join(" "),
  structured: r.structuredContent ?? null,
});
const { tools, contact, lead } = await takeTheCall(values.url, headers, values.phone);
console.log(JSON.stringify({
  tools: tools.map((t) => ({ name: t.name, required: t.inputSchema.required ?? [] })),
  lookup: result(contact),
  lead: result(lead),
}));
