//! `inference.GRPCInferenceService` over the shared OIP operations.

use std::time::Instant;

use aurum_service::ServiceError;
use prost::bytes::Bytes;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use super::proto::grpc_inference_service_server::GrpcInferenceService;
use super::proto::infer_parameter::ParameterChoice;
use super::proto::model_infer_request::InferInputTensor;
use super::proto::model_infer_response::InferOutputTensor;
use super::proto::model_metadata_response::TensorMetadata;
use super::proto::repository_index_response::ModelIndex;
use super::proto::{
    InferParameter, InferTensorContents, ModelInferRequest, ModelInferResponse,
    ModelMetadataRequest, ModelMetadataResponse, ModelReadyRequest, ModelReadyResponse,
    RepositoryIndexRequest, RepositoryIndexResponse, RepositoryModelLoadRequest,
    RepositoryModelLoadResponse, RepositoryModelUnloadRequest, RepositoryModelUnloadResponse,
    ServerLiveRequest, ServerLiveResponse, ServerMetadataRequest, ServerMetadataResponse,
    ServerReadyRequest, ServerReadyResponse,
};
use super::status_of;
use crate::AppState;
use crate::auth::{Caller, Permission};
use crate::middleware::new_request_id;
use crate::oip::infer::{self, InferOutputs, OutputKind};
use crate::oip::tensor::{
    DataType, Tensor, TensorData, checked_shape, decode_raw, element_count, encode_bool,
    encode_bytes, encode_fp64, invalid,
};

/// The gRPC service: the shared application state, nothing else.
#[derive(Clone)]
pub struct InferenceService {
    state: AppState,
}

impl InferenceService {
    pub fn new(state: AppState) -> Self {
        InferenceService { state }
    }

    /// Resolves `authorization: Bearer KEY` and checks the permission.
    async fn caller<T>(
        &self,
        request: &tonic::Request<T>,
        needed: Permission,
    ) -> Result<Caller, Status> {
        let metadata: &MetadataMap = request.metadata();
        let client = request.remote_addr().map(|a| a.ip().to_string());
        let key = metadata
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(crate::oip::bearer_key)
            .ok_or_else(|| {
                status_of(&ServiceError::Unauthenticated(
                    "missing API key: send the metadata entry `authorization: Bearer <key>`".into(),
                ))
            })?;
        let principal = self
            .state
            .platform
            .authenticate_from(key, client.as_deref())
            .await
            .map_err(|e| status_of(&e))?;
        let caller = Caller {
            principal,
            request_id: request_id(metadata),
        };
        caller.require(needed).map_err(|e| status_of(&e.0))?;
        Ok(caller)
    }
}

/// The caller's `x-request-id` when it is sane, else a new UUID (as over HTTP).
fn request_id(metadata: &MetadataMap) -> String {
    metadata
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|s| {
            !s.is_empty()
                && s.len() <= 128
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        })
        .map(String::from)
        .unwrap_or_else(new_request_id)
}

/// `PermissionDenied` (`key_out_of_scope`) unless the caller's key covers `model`.
fn in_scope(caller: &Caller, model: &str) -> Result<(), Status> {
    caller.principal.check_model(model).map_err(err)
}

fn version_arg(v: &str) -> Option<&str> {
    (!v.is_empty()).then_some(v)
}

fn err(e: ServiceError) -> Status {
    status_of(&e)
}

#[tonic::async_trait]
impl GrpcInferenceService for InferenceService {
    async fn server_live(
        &self,
        _request: Request<ServerLiveRequest>,
    ) -> Result<Response<ServerLiveResponse>, Status> {
        Ok(Response::new(ServerLiveResponse { live: true }))
    }

    async fn server_ready(
        &self,
        _request: Request<ServerReadyRequest>,
    ) -> Result<Response<ServerReadyResponse>, Status> {
        let ready = self.state.ready.load(std::sync::atomic::Ordering::SeqCst);
        Ok(Response::new(ServerReadyResponse { ready }))
    }

    async fn model_ready(
        &self,
        request: Request<ModelReadyRequest>,
    ) -> Result<Response<ModelReadyResponse>, Status> {
        let caller = self.caller(&request, Permission::ReadModels).await?;
        let r = request.into_inner();
        in_scope(&caller, &r.name)?;
        let target = infer::model_ref(&r.name, version_arg(&r.version)).map_err(err)?;
        // Unknown models are NotFound; a model that exists but cannot load, or whose artifact
        // fails verification, is not ready.
        let ready = infer::model_ready(&self.state.platform, &target)
            .await
            .map_err(err)?
            .is_none();
        Ok(Response::new(ModelReadyResponse { ready }))
    }

    async fn server_metadata(
        &self,
        request: Request<ServerMetadataRequest>,
    ) -> Result<Response<ServerMetadataResponse>, Status> {
        self.caller(&request, Permission::ReadModels).await?;
        Ok(Response::new(ServerMetadataResponse {
            name: infer::SERVER_NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            extensions: infer::EXTENSIONS.iter().map(|s| s.to_string()).collect(),
        }))
    }

    async fn model_metadata(
        &self,
        request: Request<ModelMetadataRequest>,
    ) -> Result<Response<ModelMetadataResponse>, Status> {
        let caller = self.caller(&request, Permission::ReadModels).await?;
        let r = request.into_inner();
        in_scope(&caller, &r.name)?;
        let target = infer::model_ref(&r.name, version_arg(&r.version)).map_err(err)?;
        let meta = infer::model_metadata(&self.state.platform, &target)
            .await
            .map_err(err)?;
        let tensors = |ts: Vec<infer::TensorMeta>| {
            ts.into_iter()
                .map(|t| TensorMetadata {
                    name: t.name,
                    datatype: t.datatype.as_str().into(),
                    shape: t.shape,
                })
                .collect()
        };
        Ok(Response::new(ModelMetadataResponse {
            name: meta.name,
            versions: meta.versions,
            platform: meta.platform,
            inputs: tensors(meta.inputs),
            outputs: tensors(meta.outputs),
        }))
    }

    async fn model_infer(
        &self,
        request: Request<ModelInferRequest>,
    ) -> Result<Response<ModelInferResponse>, Status> {
        let started = Instant::now();
        let caller = self.caller(&request, Permission::Predict).await?;
        let r = request.into_inner();
        in_scope(&caller, &r.model_name)?;
        let target = infer::model_ref(&r.model_name, version_arg(&r.model_version)).map_err(err)?;
        let kinds =
            infer::select_outputs(r.outputs.iter().map(|o| o.name.as_str())).map_err(err)?;
        // Answer in the form the caller used: raw contents in, raw contents out (tritonclient
        // always sends raw contents and reads raw outputs); typed contents otherwise.
        let raw_out = !r.raw_input_contents.is_empty();
        let inputs = decode_inputs(r.inputs, r.raw_input_contents).map_err(err)?;
        let out = infer::infer(
            &self.state.platform,
            &caller.ctx(),
            &target,
            inputs,
            &kinds,
            started,
        )
        .await
        .map_err(err)?;
        let mut resp = Response::new(render(out, r.id, raw_out));
        if let Ok(v) = caller.request_id.parse() {
            resp.metadata_mut().insert("x-request-id", v);
        }
        Ok(resp)
    }

    async fn repository_index(
        &self,
        request: Request<RepositoryIndexRequest>,
    ) -> Result<Response<RepositoryIndexResponse>, Status> {
        let caller = self.caller(&request, Permission::ReadModels).await?;
        let r = request.into_inner();
        let entries = infer::repository_index(&self.state.platform, r.ready)
            .await
            .map_err(err)?;
        Ok(Response::new(RepositoryIndexResponse {
            models: entries
                .into_iter()
                .filter(|e| caller.principal.policy.covers(&e.name))
                .map(|e| ModelIndex {
                    name: e.name,
                    version: e.version,
                    state: e.state.into(),
                    reason: e.reason,
                })
                .collect(),
        }))
    }

    async fn repository_model_load(
        &self,
        request: Request<RepositoryModelLoadRequest>,
    ) -> Result<Response<RepositoryModelLoadResponse>, Status> {
        let caller = self.caller(&request, Permission::ReadModels).await?;
        let r = request.into_inner();
        in_scope(&caller, &r.model_name)?;
        let target = infer::model_ref(&r.model_name, None).map_err(err)?;
        self.state.platform.resolve(&target).await.map_err(err)?;
        Ok(Response::new(RepositoryModelLoadResponse {}))
    }

    async fn repository_model_unload(
        &self,
        request: Request<RepositoryModelUnloadRequest>,
    ) -> Result<Response<RepositoryModelUnloadResponse>, Status> {
        let caller = self.caller(&request, Permission::ReadModels).await?;
        let r = request.into_inner();
        in_scope(&caller, &r.model_name)?;
        self.state
            .platform
            .get_model(&r.model_name)
            .await
            .map_err(err)?;
        let mut resp = Response::new(RepositoryModelUnloadResponse {});
        resp.metadata_mut().insert(
            "aurum-note",
            tonic::metadata::MetadataValue::from_static(infer::UNLOAD_NOTE),
        );
        Ok(resp)
    }
}

/// Decodes the request's tensors from typed `contents` or from `raw_input_contents`.
fn decode_inputs(
    inputs: Vec<InferInputTensor>,
    raw: Vec<Bytes>,
) -> Result<Vec<Tensor>, ServiceError> {
    if !raw.is_empty() && raw.len() != inputs.len() {
        return Err(invalid(
            "binary_size_mismatch",
            format!(
                "raw_input_contents has {} entries but the request has {} inputs; send one per input, in order",
                raw.len(),
                inputs.len()
            ),
        ));
    }
    let mut raw = raw.into_iter();
    let mut out = Vec::with_capacity(inputs.len());
    for input in inputs {
        let datatype = DataType::parse(&input.datatype, &input.name)?;
        let data = match (raw.next(), input.contents) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "conflicting_data",
                    format!(
                        "input `{}` sets `contents` while the request uses raw_input_contents; use one form for every input",
                        input.name
                    ),
                ));
            }
            (Some(bytes), None) => {
                let shape = checked_shape(&input.name, &input.shape)?;
                let count = element_count(&input.name, &shape)?;
                decode_raw(&input.name, datatype, count, &bytes)?
            }
            (None, Some(contents)) => from_contents(&input.name, datatype, contents)?,
            (None, None) => {
                return Err(invalid(
                    "missing_data",
                    format!(
                        "input `{}` has no contents (set `contents` or raw_input_contents)",
                        input.name
                    ),
                ));
            }
        };
        out.push(Tensor::new(input.name, datatype, &input.shape, data)?);
    }
    Ok(out)
}

/// Takes the contents field that matches the datatype, range-checking narrow integer types.
fn from_contents(
    name: &str,
    datatype: DataType,
    c: InferTensorContents,
) -> Result<TensorData, ServiceError> {
    let range = |lo: i64, hi: i64, v: Vec<i64>| -> Result<TensorData, ServiceError> {
        match v.iter().position(|x| !(lo..=hi).contains(x)) {
            Some(i) => Err(invalid(
                "value_out_of_range",
                format!(
                    "tensor `{name}` element {i} is {}, outside the range of {}",
                    v[i],
                    datatype.as_str()
                ),
            )),
            None => Ok(TensorData::Int(v)),
        }
    };
    let ints = |v: &[i32]| v.iter().map(|&x| i64::from(x)).collect::<Vec<_>>();
    let uints = |v: &[u32]| v.iter().map(|&x| i64::from(x)).collect::<Vec<_>>();
    let data = match datatype {
        DataType::Bool => TensorData::Bool(c.bool_contents),
        DataType::Int8 => range(i8::MIN.into(), i8::MAX.into(), ints(&c.int_contents))?,
        DataType::Int16 => range(i16::MIN.into(), i16::MAX.into(), ints(&c.int_contents))?,
        DataType::Int32 => TensorData::Int(ints(&c.int_contents)),
        DataType::Int64 => TensorData::Int(c.int64_contents),
        DataType::Uint8 => range(0, u8::MAX.into(), uints(&c.uint_contents))?,
        DataType::Uint16 => range(0, u16::MAX.into(), uints(&c.uint_contents))?,
        DataType::Uint32 => TensorData::Int(uints(&c.uint_contents)),
        DataType::Uint64 => TensorData::UInt(c.uint64_contents),
        DataType::Fp32 => TensorData::Float(c.fp32_contents.into_iter().map(f64::from).collect()),
        DataType::Fp64 => TensorData::Float(c.fp64_contents),
        DataType::Bytes => TensorData::Bytes(c.bytes_contents),
        DataType::Fp16 => {
            return Err(invalid(
                "datatype_mismatch",
                format!("tensor `{name}` is FP16, which travels only in raw_input_contents"),
            ));
        }
    };
    Ok(data)
}

fn render(out: InferOutputs, id: String, raw: bool) -> ModelInferResponse {
    let mut outputs = Vec::with_capacity(out.kinds.len());
    let mut raw_contents = Vec::new();
    for &kind in &out.kinds {
        let contents = if raw {
            raw_contents.push(Bytes::from(match kind {
                OutputKind::Probability => encode_fp64(&out.probability),
                OutputKind::Label => encode_bytes(&out.label),
                OutputKind::Decision => encode_bytes(&out.decision),
                OutputKind::Score => encode_fp64(&out.score),
                OutputKind::Value => encode_fp64(&out.value),
                OutputKind::Anomalous => encode_bool(&out.anomalous),
                OutputKind::Probabilities => encode_fp64(&out.probabilities),
            }));
            None
        } else {
            Some(match kind {
                OutputKind::Probability => InferTensorContents {
                    fp64_contents: out.probability.clone(),
                    ..Default::default()
                },
                OutputKind::Label => InferTensorContents {
                    bytes_contents: out.label.iter().map(|s| s.clone().into_bytes()).collect(),
                    ..Default::default()
                },
                OutputKind::Decision => InferTensorContents {
                    bytes_contents: out
                        .decision
                        .iter()
                        .map(|s| s.clone().into_bytes())
                        .collect(),
                    ..Default::default()
                },
                OutputKind::Score => InferTensorContents {
                    fp64_contents: out.score.clone(),
                    ..Default::default()
                },
                OutputKind::Value => InferTensorContents {
                    fp64_contents: out.value.clone(),
                    ..Default::default()
                },
                OutputKind::Anomalous => InferTensorContents {
                    bool_contents: out.anomalous.clone(),
                    ..Default::default()
                },
                OutputKind::Probabilities => InferTensorContents {
                    fp64_contents: out.probabilities.clone(),
                    ..Default::default()
                },
            })
        };
        let mut parameters = std::collections::HashMap::new();
        if kind == OutputKind::Probabilities {
            parameters.insert(
                "classes".to_string(),
                InferParameter {
                    parameter_choice: Some(ParameterChoice::StringParam(out.classes_parameter())),
                },
            );
        }
        outputs.push(InferOutputTensor {
            name: kind.name().into(),
            datatype: kind.datatype().as_str().into(),
            shape: out.shape(kind),
            parameters,
            contents,
        });
    }
    ModelInferResponse {
        model_name: out.model,
        model_version: out.version.to_string(),
        id,
        parameters: Default::default(),
        outputs,
        raw_output_contents: raw_contents,
    }
}
