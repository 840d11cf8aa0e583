-- wrk script for benches/run-server.sh: sends PRIVATE-TOKEN (from the environment, so the
-- same request goes to both servers) and prints one machine-readable summary line at the end.
local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then
    wrk.headers["PRIVATE-TOKEN"] = token
end

-- status codes other than 200 are counted by wrk as errors.status; count the bytes too
done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        "WRK-SUMMARY requests=%d duration_us=%d bytes=%d connect=%d read=%d write=%d status=%d timeout=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.1f\n",
        summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
        latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
