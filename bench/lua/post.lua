-- POST a JSON body template, with new alerts in every request, and print the results as JSON.
--
-- Usage: wrk -s post.lua URL -- BODY_FILE RUN_TAG [AUTHORIZATION]
-- The body file holds "@@ID@@" markers; each request replaces them with 12 hex digits:
-- run tag (2), thread (2), per-thread counter (8), so no two requests of a bench carry the
-- same alert (the responder's journal would count them as duplicates).

local thread_count = 0

function setup(thread)
  thread:set("tid", thread_count)
  thread_count = thread_count + 1
end

local template, prefix
local counter = 0

function init(args)
  local f = assert(io.open(args[1], "rb"))
  template = f:read("*a")
  f:close()
  prefix = string.format("%02x%02x", tonumber(args[2]) % 256, tid % 256)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  if args[3] and args[3] ~= "" then
    wrk.headers["Authorization"] = args[3]
  end
end

function request()
  counter = counter + 1
  local id = prefix .. string.format("%08x", counter)
  local body = string.gsub(template, "@@ID@@", id)
  return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
