-- wrk script for scripts/load-test: each request takes a random URL from the lists named in
-- the LOAD_URLS environment variable (one file of paths, one path per line), and the summary
-- counts responses by status.

local paths = {}

local function read_paths(file)
  for line in io.lines(file) do
    if line ~= "" then
      paths[#paths + 1] = line
    end
  end
end

init = function(args)
  read_paths(os.getenv("LOAD_URLS"))
  -- `id` is set by setup(), so that each thread draws its own sequence.
  math.randomseed(os.time() * 100 + (id or 0))
  statuses = {}
end

request = function()
  return wrk.format("GET", paths[math.random(#paths)], { ["Accept-Encoding"] = "gzip" })
end

response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

local threads = {}

setup = function(thread)
  threads[#threads + 1] = thread
  thread:set("id", #threads)
end

done = function(summary, latency, requests)
  local totals = {}
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses")
    for status, count in pairs(counts) do
      totals[status] = (totals[status] or 0) + count
    end
  end
  io.write("statuses:")
  for status, count in pairs(totals) do
    io.write(string.format(" %d=%d", status, count))
  end
  io.write("\n")
  io.write(string.format("errors: connect=%d read=%d write=%d timeout=%d status>=400 or <200=%d\n",
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, summary.errors.status))
  for _, p in ipairs({ 50, 90, 99, 99.9 }) do
    io.write(string.format("latency p%s: %.1f ms\n", p, latency:percentile(p) / 1000))
  end
  io.write(string.format("requests: %d in %.1f s, %.0f per second\n", summary.requests,
    summary.duration / 1e6, summary.requests / (summary.duration / 1e6)))
end
