// The Node example: one npm dependency (ms), installed by the node
// buildpack with npm on the bookworm stack.
const http = require("http");
const ms = require("ms");

const started = Date.now();
const port = process.env.PORT || 8080;
http.createServer((req, res) => {
  if (req.url === "/health") {
    res.end("ok\n");
    return;
  }
  res.end(`Hello from Node ${process.version}, up ${ms(Date.now() - started + 1000)}\n`);
}).listen(port, () => console.log(`node-hello listening on :${port}`));
