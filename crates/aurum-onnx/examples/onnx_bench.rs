//! Throughput of an imported ONNX model served in process (`bench/onnx/run.sh` drives it).
//!
//! `onnx_bench MODEL.onnx INPUTS.f32 ROW_WIDTH BATCH OUT.f64 [key=value ...]`: reads row-major
//! little-endian `f32` rows, scores them through the `onnx` family's `predict_rows` in batches
//! of `BATCH` (the serving path: rows of values in, task outputs out), prints rows per second
//! and writes the served value of every row (the PD, the class probabilities or the value) as
//! little-endian `f64` for the comparison with onnxruntime.

use std::io::Write;
use std::time::Instant;

use aurum_contract::{ModelFamily, Output, Params};
use aurum_core::Value;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 6 {
        return Err(
            "usage: onnx_bench MODEL INPUTS.f32 ROW_WIDTH BATCH OUT.f64 [key=value ...]".into(),
        );
    }
    let bytes = std::fs::read(&args[1])?;
    let raw = std::fs::read(&args[2])?;
    let width: usize = args[3].parse()?;
    let batch: usize = args[4].parse()?;
    let mut params = Params::new();
    for kv in &args[6..] {
        let (k, v) = kv.split_once('=').ok_or("parameters are key=value")?;
        params.insert(k.into(), v.into());
    }
    let values: Vec<f32> = raw
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let rows: Vec<Vec<Value>> = values
        .chunks_exact(width)
        .map(|r| r.iter().map(|v| Value::Float(f64::from(*v))).collect())
        .collect();
    let model = aurum_onnx::ONNX.import(&bytes, &params)?;
    // Warm-up, then the timed pass over every row.
    model.predict_rows(&rows[..batch.min(rows.len())])?;
    let start = Instant::now();
    let mut outputs = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(batch) {
        outputs.extend(model.predict_rows(chunk)?);
    }
    let seconds = start.elapsed().as_secs_f64();
    let mut out = std::io::BufWriter::new(std::fs::File::create(&args[5])?);
    for o in &outputs {
        let vals = match o {
            Output::Binary(p) => vec![p.probability],
            Output::Class { probabilities, .. } => probabilities.clone(),
            Output::Value(v) => vec![*v],
            Output::Anomaly { score, .. } => vec![*score],
        };
        for v in vals {
            out.write_all(&v.to_le_bytes())?;
        }
    }
    out.flush()?;
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "{{\"rows\": {}, \"batch\": {batch}, \"seconds\": {seconds:.6}, \"rows_per_s\": {:.1}}}",
        rows.len(),
        rows.len() as f64 / seconds
    )?;
    Ok(())
}
