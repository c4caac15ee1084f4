//! Load generator for live event scoring over REST (`POST /v1/models/{name}/events`).
//!
//! ```text
//! cargo run --release -p aurum-fraud --example live_load -- BASE_URL KEY EVENTS_CSV SECONDS [CONCURRENCY] [BATCH] [MODEL] [RATE]
//! ```
//!
//! Why a Rust client next to `bench/fraud/live.py`: on a 2-core machine a Python client at tens
//! of thousands of requests per second is itself the bottleneck and shares the cores with the
//! server, so it measures the client. This one keeps CONCURRENCY keep-alive HTTP/1.1
//! connections, one thread each (closed loop: a connection sends its next request when the
//! previous answer is in), taking events in file order from a shared cursor, BATCH per request
//! (`{"event": {...}}` for one, `{"events": [...]}` for more), with the same fields as
//! `live.py`. It prints events/s, requests/s, request latency p50/p99/p99.9/max and the state's
//! memory per entity (`GET /v1/models/{name}/events/state`). The run ends after SECONDS or when
//! the file is used up, whichever comes first.
//!
//! With RATE (events per second, over all connections), the load is paced instead: connection
//! `c` of `n` is scheduled to send its `k`-th request at `start + (c / n + k) * n * BATCH / RATE`
//! and waits for that time when it is early. Latency is measured from the scheduled time, not
//! from the send, so a server that falls behind the rate is charged for the queue it causes
//! (no coordinated omission: a stall delays every request scheduled during it, and each one
//! counts). This answers "what is the latency at this throughput", where the closed loop
//! answers "what is the latency at saturation".
//!
//! With the environment variable TRACE=path, every answered request is also written to `path`
//! as one line `SENT_MS LATENCY_MS` (ms from the start of the load, in send order, after a first
//! line `# start_unix_ms T`), to see when
//! in a run the slow answers came (`bench/fraud/timeline.py` folds it into windows).

use std::error::Error;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// One keep-alive connection speaking just enough HTTP/1.1 for this server's answers.
struct Conn {
    host: String,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    fn open(addr: &str) -> Result<Conn, Box<dyn Error>> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            host: addr.to_string(),
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    /// Sends one request and reads the whole answer: status and body.
    fn call(
        &mut self,
        method: &str,
        path: &str,
        key: &str,
        body: &[u8],
    ) -> Result<(u16, Vec<u8>), Box<dyn Error>> {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {key}\r\n",
            self.host
        )
        .into_bytes();
        if !body.is_empty() {
            req.extend_from_slice(
                format!(
                    "content-type: application/json\r\ncontent-length: {}\r\n",
                    body.len()
                )
                .as_bytes(),
            );
        }
        req.extend_from_slice(b"\r\n");
        req.extend_from_slice(body);
        self.writer.write_all(&req)?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {line:?}"))?;
        let mut length = None;
        let mut chunked = false;
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                return Err("connection closed inside the headers".into());
            }
            let h = line.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((name, value)) = h.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = Some(value.parse::<usize>()?);
                } else if name.eq_ignore_ascii_case("transfer-encoding")
                    && value.eq_ignore_ascii_case("chunked")
                {
                    chunked = true;
                }
            }
        }
        let mut out = Vec::new();
        if let Some(n) = length {
            out.resize(n, 0);
            self.reader.read_exact(&mut out)?;
        } else if chunked {
            loop {
                line.clear();
                self.reader.read_line(&mut line)?;
                let n = usize::from_str_radix(line.trim(), 16)?;
                let mut chunk = vec![0; n + 2];
                self.reader.read_exact(&mut chunk)?;
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&chunk[..n]);
            }
        } else {
            return Err("answer with neither content-length nor chunked body".into());
        }
        Ok((status, out))
    }
}

/// The request bodies: the stream's events in file order, `batch` per body.
fn bodies(path: &str, batch: usize) -> Result<Vec<Vec<u8>>, Box<dyn Error>> {
    let mut reader = csv::Reader::from_path(path)?;
    let headers = reader.headers()?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| format!("{path} has no column {name}"))
    };
    let (id, dt, customer, terminal, amount, secs) = (
        col("TRANSACTION_ID")?,
        col("TX_DATETIME")?,
        col("CUSTOMER_ID")?,
        col("TERMINAL_ID")?,
        col("TX_AMOUNT")?,
        col("TX_TIME_SECONDS")?,
    );
    let mut events = Vec::new();
    for row in reader.records() {
        let row = row?;
        events.push(json!({
            "TRANSACTION_ID": row[id].parse::<i64>()?,
            "TX_DATETIME": &row[dt],
            "CUSTOMER_ID": row[customer].parse::<i64>()?,
            "TERMINAL_ID": row[terminal].parse::<i64>()?,
            "TX_AMOUNT": row[amount].parse::<f64>()?,
            "TX_TIME_SECONDS": row[secs].parse::<i64>()?,
        }));
    }
    Ok(if batch == 1 {
        events
            .into_iter()
            .map(|e| serde_json::to_vec(&json!({ "event": e })))
            .collect::<Result<_, _>>()?
    } else {
        events
            .chunks_exact(batch)
            .map(|c| serde_json::to_vec(&json!({ "events": c })))
            .collect::<Result<_, _>>()?
    })
}

fn quantile(sorted: &[Duration], q: f64) -> f64 {
    let i = ((q * sorted.len() as f64) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        return Err(
            "usage: live_load BASE_URL KEY EVENTS_CSV SECONDS [CONCURRENCY] [BATCH] [MODEL] [RATE]"
                .into(),
        );
    }
    let addr = args[0]
        .strip_prefix("http://")
        .ok_or("BASE_URL must start with http://")?
        .trim_end_matches('/')
        .to_string();
    let key = args[1].as_str();
    let seconds: f64 = args[3].parse()?;
    let conc: usize = args.get(4).map_or(Ok(8), |s| s.parse())?;
    let batch: usize = args.get(5).map_or(Ok(1), |s| s.parse())?;
    let model = args.get(6).map_or("fraud", String::as_str);
    let rate: Option<f64> = args.get(7).map(|s| s.parse()).transpose()?;
    if conc == 0 || batch == 0 {
        return Err("CONCURRENCY and BATCH must be at least 1".into());
    }
    if rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        return Err("RATE must be a positive number of events per second".into());
    }
    // Seconds between two requests of one connection when paced.
    let period = rate.map(|r| (conc * batch) as f64 / r);
    let bodies = bodies(&args[2], batch)?;
    let path = format!("/v1/models/{model}/events");
    let state_path = format!("/v1/models/{model}/events/state");

    // Warm-up: the first call recovers the state and decodes the model; keep it out of the figures.
    let (status, body) = Conn::open(&addr)?.call("GET", &state_path, key, b"")?;
    if status != 200 {
        return Err(format!("state: {status} {}", String::from_utf8_lossy(&body)).into());
    }

    let cursor = AtomicUsize::new(0);
    let errors: Mutex<Vec<(u16, String)>> = Mutex::new(Vec::new());
    let started = Instant::now();
    let started_wall = std::time::SystemTime::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let per_conn: Vec<Vec<(Duration, Duration)>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..conc)
            .map(|c| {
                let (addr, cursor, bodies, errors, path) =
                    (&addr, &cursor, &bodies, &errors, &path);
                s.spawn(move || -> Result<Vec<(Duration, Duration)>, String> {
                    let mut conn = Conn::open(addr).map_err(|e| e.to_string())?;
                    let mut lat = Vec::with_capacity(1 << 16);
                    let mut k = 0u32;
                    while Instant::now() < deadline {
                        let i = cursor.fetch_add(1, Ordering::Relaxed);
                        let Some(body) = bodies.get(i) else { break };
                        let t = match period {
                            None => Instant::now(),
                            Some(p) => {
                                let at = started
                                    + Duration::from_secs_f64(
                                        p * (c as f64 / conc as f64 + k as f64),
                                    );
                                k += 1;
                                let now = Instant::now();
                                if at > now {
                                    std::thread::sleep(at - now);
                                }
                                at
                            }
                        };
                        let (status, answer) = conn
                            .call("POST", path, key, body)
                            .map_err(|e| e.to_string())?;
                        let dt = t.elapsed();
                        if status == 200 {
                            lat.push((t - started, dt));
                        } else {
                            let text = String::from_utf8_lossy(&answer[..answer.len().min(200)]);
                            errors
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .push((status, text.into_owned()));
                        }
                    }
                    Ok(lat)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| match w.join() {
                Ok(Ok(lat)) => lat,
                Ok(Err(e)) => {
                    eprintln!("connection failed: {e}");
                    Vec::new()
                }
                Err(_) => Vec::new(),
            })
            .collect()
    });
    let wall = started.elapsed().as_secs_f64();
    let mut sent: Vec<(Duration, Duration)> = per_conn.into_iter().flatten().collect();
    if let Ok(path) = std::env::var("TRACE") {
        // One line per answered request: when it was sent (or scheduled) and how long it took,
        // both in ms from the start, in send order.
        sent.sort_unstable();
        let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
        let epoch = started_wall.duration_since(std::time::UNIX_EPOCH)?;
        writeln!(f, "# start_unix_ms {}", epoch.as_millis())?;
        for (at, dt) in &sent {
            writeln!(
                f,
                "{:.3} {:.3}",
                at.as_secs_f64() * 1e3,
                dt.as_secs_f64() * 1e3
            )?;
        }
        f.flush()?;
    }
    let mut lat: Vec<Duration> = sent.into_iter().map(|(_, dt)| dt).collect();
    lat.sort_unstable();
    let errors = errors.into_inner().unwrap_or_else(|p| p.into_inner());
    let n = lat.len() * batch;
    let mut out = std::io::stdout().lock();
    let paced = rate.map_or(String::new(), |r| {
        format!(", paced at {r:.0} events/s (latency from the scheduled send)")
    });
    writeln!(
        out,
        "concurrency {conc}, {batch} event(s) per request{paced}: {n} events in {wall:.1} s = {:.0} events/s, \
         {:.0} requests/s; request latency p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms; errors {}{}",
        n as f64 / wall,
        lat.len() as f64 / wall,
        quantile(&lat, 0.50),
        quantile(&lat, 0.99),
        quantile(&lat, 0.999),
        quantile(&lat, 1.0),
        errors.len(),
        errors
            .first()
            .map(|e| format!(" (first: {e:?})"))
            .unwrap_or_default()
    )?;
    let (_, body) = Conn::open(&addr)?.call("GET", &state_path, key, b"")?;
    let state: Value = serde_json::from_slice(&body)?;
    writeln!(out, "state: {state}")?;
    Ok(())
}
