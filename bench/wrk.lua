-- wrk script for ./build.sh bench: cycles through pre-built requests, one per credential line of
-- a file (or one bare request when the file is "-"), and prints one JSON summary line.
-- Arguments (after `--`): path, credential file, starting offset.

local reqs = {}
local n = 0
local i = 0

function init(args)
  local path = args[1] or "/"
  local file = args[2] or "-"
  local offset = tonumber(args[3] or "0")
  if file == "-" then
    reqs[1] = wrk.format("GET", path)
    n = 1
  else
    for line in io.lines(file) do
      if #line > 0 then
        n = n + 1
        reqs[n] = wrk.format("GET", path, { ["Authorization"] = "Bearer " .. line })
      end
    end
  end
  i = offset % n
end

function request()
  i = i + 1
  if i > n then
    i = 1
  end
  return reqs[i]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"non2xx":%d,"socket_errors":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
