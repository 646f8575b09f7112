//! A null Jina gateway (for the benchmarks in `bench/`, feature `null-gateway`): a tonic
//! `JinaRPC` server that answers every `/jina.JinaRPC/Call` at once with the request it received,
//! as a Flow whose executors do nothing would. It measures what flowbridge itself costs per
//! event, without a Flow in the way. Unlike the fake gateway it records nothing and has no modes.

use std::pin::Pin;

use tokio::net::TcpListener;
use tokio_stream::Stream;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status, Streaming};

use crate::flow::proto::jina::DataRequestProto;
use crate::flow::proto::jina::jina_rpc_server::{JinaRpc, JinaRpcServer};

type CallStream = Pin<Box<dyn Stream<Item = Result<DataRequestProto, Status>> + Send>>;

struct Null;

#[tonic::async_trait]
impl JinaRpc for Null {
    type CallStream = CallStream;

    async fn call(
        &self,
        request: Request<Streaming<DataRequestProto>>,
    ) -> Result<Response<CallStream>, Status> {
        let mut stream = request.into_inner();
        let mut answers = Vec::with_capacity(1);
        while let Some(message) = stream.message().await? {
            answers.push(Ok(message));
        }
        Ok(Response::new(Box::pin(tokio_stream::iter(answers))))
    }
}

/// Serves the null gateway on `listener` until the process ends.
pub async fn serve(listener: TcpListener) -> Result<(), String> {
    Server::builder()
        .add_service(JinaRpcServer::new(Null).max_decoding_message_size(usize::MAX))
        // TCP_NODELAY as real gateways have it (gRPC core sets it): the headers, message and
        // trailers of an answer are separate writes, which Nagle would hold back.
        .serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true)))
        .await
        .map_err(|e| format!("null gateway: {e}"))
}
