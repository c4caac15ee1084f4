//! Generates the Open Inference Protocol gRPC types and service from the vendored proto.
//!
//! `protox` parses the proto in pure Rust, so the build needs neither a `protoc` binary nor the
//! network; `tonic-prost-build` turns the descriptors into prost messages and the tonic service.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/open_inference_grpc.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // The client is for tests and tools: it is built over any transport, not a `Channel`.
        .build_transport(false)
        .emit_rerun_if_changed(false)
        // Raw tensor bytes stay `Bytes`, sliced from the received buffer instead of copied.
        .bytes(".inference.ModelInferRequest.raw_input_contents")
        .bytes(".inference.ModelInferResponse.raw_output_contents")
        .compile_fds(descriptors)?;
    Ok(())
}
