//! REST handlers of the Open Inference Protocol and their JSON wire types.

use std::time::Instant;

use aurum_service::ServiceError;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::binary::{self, BinaryReader};
use super::error::{OipError, OipResult};
use super::infer::{self, InferOutputs, OutputKind};
use super::tensor::{
    DataType, Elements, Tensor, checked_shape, decode_raw, element_count, invalid,
};
use super::{OipCaller, OipPath as Path};
use crate::AppState;
use crate::auth::{Caller, Permission};
use crate::middleware::read_body;

// ----- wire types -----

#[derive(Deserialize)]
struct InferRequestJson {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    parameters: Option<RequestParams>,
    inputs: Vec<InputJson>,
    #[serde(default)]
    outputs: Option<Vec<RequestedOutputJson>>,
}

#[derive(Default, Deserialize)]
struct RequestParams {
    #[serde(default)]
    binary_data_output: Option<bool>,
}

#[derive(Deserialize)]
struct InputJson {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Option<InputParams>,
    /// Flattened while parsing (see [`Elements`]); never a `serde_json::Value` tree.
    #[serde(default)]
    data: Option<Elements>,
}

#[derive(Default, Deserialize)]
struct InputParams {
    #[serde(default)]
    binary_data_size: Option<u64>,
}

#[derive(Deserialize)]
struct RequestedOutputJson {
    name: String,
    #[serde(default)]
    parameters: Option<OutputParams>,
}

#[derive(Default, Deserialize)]
struct OutputParams {
    /// tritonclient's name for the per-output flag.
    #[serde(default)]
    binary_data: Option<bool>,
    #[serde(default)]
    binary_data_output: Option<bool>,
}

#[derive(Serialize)]
struct InferResponseJson<'a> {
    model_name: &'a str,
    model_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    outputs: Vec<OutputJson<'a>>,
}

#[derive(Serialize)]
struct OutputJson<'a> {
    name: &'static str,
    datatype: &'static str,
    shape: Vec<i64>,
    #[serde(skip_serializing_if = "OutParams::is_empty")]
    parameters: OutParams,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<OutData<'a>>,
}

/// An output tensor's parameters: its size in the binary tail, and the class order of the
/// class-probability output.
#[derive(Serialize, Default)]
struct OutParams {
    #[serde(skip_serializing_if = "Option::is_none")]
    binary_data_size: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    classes: Option<String>,
}

impl OutParams {
    fn is_empty(&self) -> bool {
        self.binary_data_size.is_none() && self.classes.is_none()
    }
}

#[derive(Serialize)]
#[serde(untagged)]
enum OutData<'a> {
    F64(&'a [f64]),
    Str(&'a [String]),
    Bool(&'a [bool]),
}

#[derive(Serialize)]
struct ServerMetadataJson {
    name: &'static str,
    version: &'static str,
    extensions: [&'static str; 2],
}

#[derive(Serialize)]
struct TensorMetaJson {
    name: String,
    datatype: &'static str,
    shape: Vec<i64>,
}

#[derive(Serialize)]
struct ModelMetadataJson {
    name: String,
    versions: Vec<String>,
    platform: String,
    inputs: Vec<TensorMetaJson>,
    outputs: Vec<TensorMetaJson>,
}

#[derive(Default, Deserialize)]
struct IndexRequestJson {
    #[serde(default)]
    ready: Option<bool>,
}

#[derive(Serialize)]
struct IndexEntryJson {
    name: String,
    version: String,
    state: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    reason: String,
}

#[derive(Serialize)]
struct UnloadJson {
    model: String,
    unloaded: bool,
    message: &'static str,
}

/// Parses a JSON request. The wire structs are derived, so serde refuses a repeated field at
/// any depth; that becomes 400 `duplicate_key` naming its path (found by a second, path-tracking
/// parse that only failing requests pay for). Keys the protocol does not define are skipped
/// unread, so a repeated one cannot change the answer.
fn parse<'a, T: Deserialize<'a>>(bytes: &'a [u8], what: &str) -> Result<T, ServiceError> {
    // Every request is an object: serde would also read a struct from an array, by position.
    if let Some(&first) = bytes.iter().find(|b| !b.is_ascii_whitespace())
        && first != b'{'
    {
        return Err(invalid(
            "malformed_request",
            format!("invalid {what}: the body must be a JSON object"),
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        if !e.to_string().starts_with("duplicate field") {
            // serde's Rust type names (`expected u64`, `expected struct …`) in JSON terms; its
            // position suffix kept.
            let text = e.to_string();
            let (head, at) = text.rfind(" at line ").map_or((text.as_str(), ""), |i| text.split_at(i));
            let text = format!("{}{at}", crate::middleware::without_type_names(head));
            return invalid("malformed_request", format!("invalid {what}: {text}"));
        }
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let path = match serde_path_to_error::deserialize::<_, T>(&mut de) {
            Err(pe) => {
                let parent = pe.path().to_string();
                let key = e.to_string().split('`').nth(1).unwrap_or_default().to_string();
                if parent == "." {
                    key
                } else {
                    format!("{parent}.{key}")
                }
            }
            Ok(_) => String::new(),
        };
        ServiceError::Invalid {
            code: "duplicate_key",
            field: Some(path.clone()),
            message: format!(
                "invalid {what}: `{path}` appears more than once in the same object; send each key once"
            ),
        }
    })
}

// ----- health and metadata -----

/// `GET /v2/health/live`: 200 while the process runs.
#[utoipa::path(get, path = "/v2/health/live", tag = "oip", responses((status = 200, description = "the process is up")))]
pub async fn live() -> StatusCode {
    StatusCode::OK
}

/// `GET /v2/health/ready`: 200 when ready, 503 while starting or draining.
#[utoipa::path(get, path = "/v2/health/ready", tag = "oip", responses((status = 200, description = "ready"), (status = 503, description = "starting or draining")))]
pub async fn ready(State(state): State<AppState>) -> StatusCode {
    if state.ready.load(std::sync::atomic::Ordering::SeqCst) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// `GET /v2`.
#[utoipa::path(get, path = "/v2", tag = "oip", responses((status = 200, description = "server name, version and extensions", body = Object)), security(("bearer" = [])))]
pub async fn server_metadata(OipCaller(caller): OipCaller) -> OipResult<Response> {
    caller.require(Permission::ReadModels)?;
    Ok(Json(ServerMetadataJson {
        name: infer::SERVER_NAME,
        version: env!("CARGO_PKG_VERSION"),
        extensions: infer::EXTENSIONS,
    })
    .into_response())
}

async fn metadata_with(
    state: AppState,
    caller: Caller,
    name: &str,
    version: Option<&str>,
) -> OipResult<Response> {
    caller.require(Permission::ReadModels)?;
    let target = infer::model_ref(name, version)?;
    let meta = infer::model_metadata(&state.platform, &target).await?;
    let tensors = |ts: Vec<infer::TensorMeta>| {
        ts.into_iter()
            .map(|t| TensorMetaJson {
                name: t.name,
                datatype: t.datatype.as_str(),
                shape: t.shape,
            })
            .collect()
    };
    Ok(Json(ModelMetadataJson {
        name: meta.name,
        versions: meta.versions,
        platform: meta.platform,
        inputs: tensors(meta.inputs),
        outputs: tensors(meta.outputs),
    })
    .into_response())
}

/// `GET /v2/models/{name}`: the champion's metadata.
#[utoipa::path(get, path = "/v2/models/{name}", tag = "oip", params(("name" = String, Path)), responses((status = 200, description = "the champion's inputs and outputs", body = Object)), security(("bearer" = [])))]
pub async fn model_metadata(
    State(state): State<AppState>,
    OipCaller(caller): OipCaller,
    Path(name): Path<String>,
) -> OipResult<Response> {
    metadata_with(state, caller, &name, None).await
}

/// `GET /v2/models/{name}/versions/{version}`.
#[utoipa::path(get, path = "/v2/models/{name}/versions/{version}", tag = "oip", params(("name" = String, Path), ("version" = String, Path)), responses((status = 200, description = "the version's inputs and outputs", body = Object)), security(("bearer" = [])))]
pub async fn model_metadata_version(
    State(state): State<AppState>,
    OipCaller(caller): OipCaller,
    Path((name, version)): Path<(String, String)>,
) -> OipResult<Response> {
    metadata_with(state, caller, &name, Some(&version)).await
}

async fn ready_with(
    state: AppState,
    caller: Caller,
    name: &str,
    version: Option<&str>,
) -> OipResult<StatusCode> {
    caller.require(Permission::ReadModels)?;
    let target = infer::model_ref(name, version)?;
    match infer::model_ready(&state.platform, &target).await? {
        None => Ok(StatusCode::OK),
        Some(reason) => Err(OipError(ServiceError::Unavailable(format!(
            "model `{name}` is not ready: {reason}"
        )))),
    }
}

/// `GET /v2/models/{name}/ready`: 200 when the model loads and its artifact verifies, 503
/// `unavailable` with the reason when it does not.
#[utoipa::path(get, path = "/v2/models/{name}/ready", tag = "oip", params(("name" = String, Path)), responses((status = 200, description = "ready"), (status = 503, description = "exists but cannot answer (e.g. its artifact fails verification)", body = super::error::OipErrorBody)), security(("bearer" = [])))]
pub async fn model_ready(
    State(state): State<AppState>,
    OipCaller(caller): OipCaller,
    Path(name): Path<String>,
) -> OipResult<StatusCode> {
    ready_with(state, caller, &name, None).await
}

/// `GET /v2/models/{name}/versions/{version}/ready`.
#[utoipa::path(get, path = "/v2/models/{name}/versions/{version}/ready", tag = "oip", params(("name" = String, Path), ("version" = String, Path)), responses((status = 200, description = "ready"), (status = 503, description = "exists but cannot answer (e.g. its artifact fails verification)", body = super::error::OipErrorBody)), security(("bearer" = [])))]
pub async fn model_ready_version(
    State(state): State<AppState>,
    OipCaller(caller): OipCaller,
    Path((name, version)): Path<(String, String)>,
) -> OipResult<StatusCode> {
    ready_with(state, caller, &name, Some(&version)).await
}

// ----- inference -----

/// `POST /v2/models/{name}/infer`: the champion answers.
#[utoipa::path(post, path = "/v2/models/{name}/infer", tag = "oip", params(("name" = String, Path)), request_body(content = Object, description = "an inference request (`inputs`, optional `outputs`, `parameters`, `id`); with `Inference-Header-Content-Length`, JSON followed by binary tensor data"), responses((status = 200, description = "outputs by the model's task: binary `probability` (FP64), `label` (BYTES), `decision` (BYTES: approve, refer or decline under the version's policy) and `score` (FP64, null where the model has none); multiclass `label`, `probability` (of the predicted class) and `probabilities` (FP64 [batch, classes], the class order in its `classes` parameter); regression `value`; anomaly `score` and `anomalous` (BOOL)", body = Object)), security(("bearer" = [])))]
pub async fn infer(
    State(state): State<AppState>,
    OipCaller(caller): OipCaller,
    Path(name): Path<String>,
    req: Request,
) -> OipResult<Response> {
    infer_with(state, caller, &name, None, req).await
}

/// `POST /v2/models/{name}/versions/{version}/infer`.
#[utoipa::path(post, path = "/v2/models/{name}/versions/{version}/infer", tag = "oip", params(("name" = String, Path), ("version" = String, Path)), request_body(content = Object, description = "an inference request, as for the champion"), responses((status = 200, description = "outputs by the model's task: binary `probability` (FP64), `label` (BYTES), `decision` (BYTES: approve, refer or decline under the version's policy) and `score` (FP64, null where the model has none); multiclass `label`, `probability` (of the predicted class) and `probabilities` (FP64 [batch, classes], the class order in its `classes` parameter); regression `value`; anomaly `score` and `anomalous` (BOOL)", body = Object)), security(("bearer" = [])))]
pub async fn infer_version(
    State(state): State<AppState>,
    OipCaller(caller): OipCaller,
    Path((name, version)): Path<(String, String)>,
    req: Request,
) -> OipResult<Response> {
    infer_with(state, caller, &name, Some(&version), req).await
}

async fn infer_with(
    state: AppState,
    caller: Caller,
    name: &str,
    version: Option<&str>,
    req: Request,
) -> OipResult<Response> {
    let started = Instant::now();
    caller.require(Permission::Predict)?;
    let target = infer::model_ref(name, version)?;
    let header_len = binary::header_length(req.headers())?;
    let body: Bytes = read_body(req, &state).await?;
    let request = decode_infer_request(&body, header_len)?;

    let out = infer::infer(
        &state.platform,
        &caller.ctx(),
        &target,
        request.inputs,
        &request.outputs,
        started,
    )
    .await?;
    // Outputs not named in the request (all of the model's) follow the request-wide flag.
    let binary = if request.outputs.is_empty() {
        vec![request.binary_default; out.kinds.len()]
    } else {
        request.binary_outputs
    };
    render_infer(&out, request.id.as_deref(), &binary)
}

/// An inference request body, decoded and checked, before any model is involved.
#[derive(Debug)]
pub struct DecodedInfer {
    /// The request's `id`, echoed in the response.
    pub id: Option<String>,
    /// The input tensors in request order, each with its element count matching its shape.
    pub inputs: Vec<Tensor>,
    /// The outputs asked for, in request order (empty when none is named: all of the model's).
    pub outputs: Vec<OutputKind>,
    /// Parallel to `outputs`: whether each is returned as binary tensor data.
    pub binary_outputs: Vec<bool>,
    /// Whether outputs not named are returned as binary data (`binary_data_output`).
    pub binary_default: bool,
}

/// Decodes an inference request body: the JSON part (all of `body` without
/// `Inference-Header-Content-Length`, else its first `header_len` bytes) and, for each input
/// with `parameters.binary_data_size`, its slice of the binary part. This is everything
/// `POST /v2/models/{name}/infer` reads from the body; the body is untrusted, so every way it
/// can be wrong is a 400 [`ServiceError::Invalid`], never a panic.
pub fn decode_infer_request(
    body: &[u8],
    header_len: Option<usize>,
) -> Result<DecodedInfer, ServiceError> {
    let (json, bin) = binary::split(body, header_len)?;
    let request: InferRequestJson = parse(json, "inference request")?;

    // Outputs: which, in which order, and which as binary.
    let wide_binary = request
        .parameters
        .as_ref()
        .and_then(|p| p.binary_data_output)
        .unwrap_or(false);
    let requested = request.outputs.unwrap_or_default();
    let outputs = infer::select_outputs(requested.iter().map(|o| o.name.as_str()))?;
    let binary_outputs: Vec<bool> = if requested.is_empty() {
        Vec::new()
    } else {
        requested
            .iter()
            .map(|o| {
                let p = o.parameters.as_ref();
                p.and_then(|p| p.binary_data.or(p.binary_data_output))
                    .unwrap_or(wide_binary)
            })
            .collect()
    };

    // Inputs: JSON `data` or a slice of the binary part.
    let mut reader = BinaryReader::new(bin, header_len.is_some());
    let mut inputs = Vec::with_capacity(request.inputs.len());
    for input in request.inputs {
        let datatype = DataType::parse(&input.datatype, &input.name)?;
        let size = input.parameters.as_ref().and_then(|p| p.binary_data_size);
        let data = match (size, input.data) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "conflicting_data",
                    format!(
                        "input `{}` has both `data` and parameters.binary_data_size; send one",
                        input.name
                    ),
                ));
            }
            (Some(size), None) => {
                let raw = reader.take(&input.name, size)?;
                let shape = checked_shape(&input.name, &input.shape)?;
                let count = element_count(&input.name, &shape)?;
                decode_raw(&input.name, datatype, count, raw)?
            }
            (None, Some(elements)) => elements.into_data(&input.name, datatype)?,
            (None, None) => {
                return Err(invalid(
                    "missing_data",
                    format!(
                        "input `{}` has no `data` (or parameters.binary_data_size with binary data)",
                        input.name
                    ),
                ));
            }
        };
        inputs.push(Tensor::new(input.name, datatype, &input.shape, data)?);
    }
    reader.finish()?;
    Ok(DecodedInfer {
        id: request.id,
        inputs,
        outputs,
        binary_outputs,
        binary_default: wide_binary,
    })
}

fn render_infer(
    out: &InferOutputs,
    id: Option<&str>,
    binary_flags: &[bool],
) -> OipResult<Response> {
    let kinds = &out.kinds;
    let mut raw = Vec::new();
    let mut any_binary = false;
    let outputs = kinds
        .iter()
        .zip(binary_flags)
        .map(|(&kind, &binary)| {
            let (mut parameters, data) = if binary {
                any_binary = true;
                let bytes = match kind {
                    OutputKind::Probability => super::tensor::encode_fp64(&out.probability),
                    OutputKind::Label => super::tensor::encode_bytes(&out.label),
                    OutputKind::Decision => super::tensor::encode_bytes(&out.decision),
                    OutputKind::Score => super::tensor::encode_fp64(&out.score),
                    OutputKind::Value => super::tensor::encode_fp64(&out.value),
                    OutputKind::Anomalous => super::tensor::encode_bool(&out.anomalous),
                    OutputKind::Probabilities => super::tensor::encode_fp64(&out.probabilities),
                };
                let size = bytes.len();
                raw.extend_from_slice(&bytes);
                (
                    OutParams {
                        binary_data_size: Some(size),
                        classes: None,
                    },
                    None,
                )
            } else {
                let data = match kind {
                    OutputKind::Probability => OutData::F64(&out.probability),
                    OutputKind::Label => OutData::Str(&out.label),
                    OutputKind::Decision => OutData::Str(&out.decision),
                    OutputKind::Score => OutData::F64(&out.score),
                    OutputKind::Value => OutData::F64(&out.value),
                    OutputKind::Anomalous => OutData::Bool(&out.anomalous),
                    OutputKind::Probabilities => OutData::F64(&out.probabilities),
                };
                (OutParams::default(), Some(data))
            };
            if kind == OutputKind::Probabilities {
                parameters.classes = Some(out.classes_parameter());
            }
            OutputJson {
                name: kind.name(),
                datatype: kind.datatype().as_str(),
                shape: out.shape(kind),
                parameters,
                data,
            }
        })
        .collect();
    let body = InferResponseJson {
        model_name: &out.model,
        model_version: out.version.to_string(),
        id,
        outputs,
    };
    let mut json = serde_json::to_vec(&body).map_err(|e| {
        OipError(ServiceError::Internal(format!(
            "cannot render response: {e}"
        )))
    })?;
    if !any_binary {
        return Ok((
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            json,
        )
            .into_response());
    }
    let json_len = json.len();
    json.extend_from_slice(&raw);
    let mut resp = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        )],
        json,
    )
        .into_response();
    resp.headers_mut()
        .insert(binary::HEADER, HeaderValue::from(json_len));
    Ok(resp)
}

// ----- model repository extension -----

/// `POST /v2/repository/index`: every model version and its state. The body is optional;
/// `{"ready": true}` lists only ready versions.
#[utoipa::path(post, path = "/v2/repository/index", tag = "oip", responses((status = 200, description = "every version with its state (READY or UNAVAILABLE) and the reason", body = Vec<Object>)), security(("bearer" = [])))]
pub async fn repository_index(
    State(state): State<AppState>,
    OipCaller(caller): OipCaller,
    req: Request,
) -> OipResult<Response> {
    caller.require(Permission::ReadModels)?;
    let body = read_body(req, &state).await?;
    let request: IndexRequestJson = if body.iter().all(u8::is_ascii_whitespace) {
        IndexRequestJson::default()
    } else {
        parse(&body, "repository index request")?
    };
    let entries = infer::repository_index(&state.platform, request.ready.unwrap_or(false)).await?;
    let entries: Vec<IndexEntryJson> = entries
        .into_iter()
        .filter(|e| caller.principal.policy.covers(&e.name))
        .map(|e| IndexEntryJson {
            name: e.name,
            version: e.version,
            state: e.state,
            reason: e.reason,
        })
        .collect();
    Ok(Json(entries).into_response())
}

/// `POST /v2/repository/models/{name}/load`: loads and verifies the champion into the cache.
#[utoipa::path(post, path = "/v2/repository/models/{name}/load", tag = "oip", params(("name" = String, Path)), responses((status = 200, description = "the champion is loaded and verified")), security(("bearer" = [])))]
pub async fn repository_load(
    State(state): State<AppState>,
    OipCaller(caller): OipCaller,
    Path(name): Path<String>,
) -> OipResult<StatusCode> {
    caller.require(Permission::ReadModels)?;
    state
        .platform
        .resolve(&infer::model_ref(&name, None)?)
        .await?;
    Ok(StatusCode::OK)
}

/// `POST /v2/repository/models/{name}/unload`: accepted as a no-op, which the body says.
#[utoipa::path(post, path = "/v2/repository/models/{name}/unload", tag = "oip", params(("name" = String, Path)), responses((status = 200, description = "accepted as a no-op (the body says so)", body = Object)), security(("bearer" = [])))]
pub async fn repository_unload(
    State(state): State<AppState>,
    OipCaller(caller): OipCaller,
    Path(name): Path<String>,
) -> OipResult<Response> {
    caller.require(Permission::ReadModels)?;
    state.platform.get_model(&name).await?;
    Ok(Json(UnloadJson {
        model: name,
        unloaded: false,
        message: infer::UNLOAD_NOTE,
    })
    .into_response())
}
