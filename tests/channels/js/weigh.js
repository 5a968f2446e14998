// Reads a JSON array of texts on stdin, prints one JSON array of {weightedLength, valid} with
// the official twitter-text package (twitter-text v3 configuration, its default).
const twitter = require("twitter-text");
let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const texts = JSON.parse(input);
  const out = texts.map((text) => {
    const parsed = twitter.parseTweet(text);
    const urls = twitter.extractUrlsWithIndices(text).map((u) => u.url);
    return { weightedLength: parsed.weightedLength, valid: parsed.valid, urls };
  });
  process.stdout.write(JSON.stringify(out));
});
