//! The trussed side of the peer: the backends piv-authenticator 0.7.0 needs
//! (trussed-auth for PIN/PUK, trussed-staging for chunked / hpke / wrap-key-to-file),
//! and a client wrapper that lets us build a fresh `Authenticator` on the same client.

use core::task::Poll;

use trussed::{
    backend::{Backend as _, BackendId},
    platform::Platform,
    serde_extensions::{ExtensionDispatch, ExtensionId, ExtensionImpl},
    service::ServiceResources,
    types::Context,
};
use trussed_auth::AuthExtension;
use trussed_auth_backend::{AuthBackend, AuthContext, FilesystemLayout};
use trussed_chunked::ChunkedExtension;
use trussed_core::{
    api::{reply, request, Reply, Request, RequestVariant},
    serde_extensions::{Extension, ExtensionClient},
    types::{Bytes, Location},
    ClientResult, Error, FutureResult, InterruptFlag, PollClient,
};
use trussed_hpke::HpkeExtension;
use trussed_staging::{StagingBackend, StagingContext};
use trussed_wrap_key_to_file::WrapKeyToFileExtension;

/// Custom backends, in the order the service tries them for core requests
/// (before trussed's own core backend).
#[derive(Debug, Clone, Copy)]
pub enum BackendKind {
    Staging,
    Auth,
}

pub const BACKENDS: &[BackendId<BackendKind>] = &[
    BackendId::Custom(BackendKind::Staging),
    BackendId::Custom(BackendKind::Auth),
    BackendId::Core,
];

/// Extension ids as seen by the client (any stable numbering works; client and
/// service share it through `ExtensionId`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExtKind {
    Auth = 0,
    Chunked = 1,
    Hpke = 2,
    WrapKeyToFile = 3,
}

impl From<ExtKind> for u8 {
    fn from(e: ExtKind) -> u8 {
        e as u8
    }
}

impl TryFrom<u8> for ExtKind {
    type Error = Error;
    fn try_from(v: u8) -> Result<Self, Error> {
        Ok(match v {
            0 => ExtKind::Auth,
            1 => ExtKind::Chunked,
            2 => ExtKind::Hpke,
            3 => ExtKind::WrapKeyToFile,
            _ => return Err(Error::InternalError),
        })
    }
}

pub struct PeerDispatch {
    auth: AuthBackend,
    staging: StagingBackend,
}

#[derive(Default)]
pub struct PeerContext {
    auth: AuthContext,
    staging: StagingContext,
}

impl PeerDispatch {
    /// `hw_key` is the device secret trussed-auth mixes into its PIN-derived keys.
    /// A constant is fine for a test peer (and keeps a `--state-dir` store readable
    /// across restarts).
    pub fn new(hw_key: &[u8]) -> Self {
        PeerDispatch {
            auth: AuthBackend::with_hw_key(
                Location::Internal,
                {
                    let mut key = Bytes::new();
                    key.extend_from_slice(hw_key).expect("hw key too long");
                    key
                },
                FilesystemLayout::V0,
            ),
            staging: StagingBackend::new(),
        }
    }
}

impl ExtensionDispatch for PeerDispatch {
    type BackendId = BackendKind;
    type Context = PeerContext;
    type ExtensionId = ExtKind;

    fn core_request<P: Platform>(
        &mut self,
        backend: &BackendKind,
        ctx: &mut Context<PeerContext>,
        request: &Request,
        resources: &mut ServiceResources<P>,
    ) -> Result<Reply, Error> {
        match backend {
            BackendKind::Auth => {
                self.auth
                    .request(&mut ctx.core, &mut ctx.backends.auth, request, resources)
            }
            BackendKind::Staging => {
                self.staging
                    .request(&mut ctx.core, &mut ctx.backends.staging, request, resources)
            }
        }
    }

    fn extension_request<P: Platform>(
        &mut self,
        backend: &BackendKind,
        extension: &ExtKind,
        ctx: &mut Context<PeerContext>,
        request: &request::SerdeExtension,
        resources: &mut ServiceResources<P>,
    ) -> Result<reply::SerdeExtension, Error> {
        let core = &mut ctx.core;
        match (backend, extension) {
            (BackendKind::Auth, ExtKind::Auth) => {
                <AuthBackend as ExtensionImpl<AuthExtension>>::extension_request_serialized(
                    &mut self.auth,
                    core,
                    &mut ctx.backends.auth,
                    request,
                    resources,
                )
            }
            (BackendKind::Staging, ExtKind::Chunked) => {
                <StagingBackend as ExtensionImpl<ChunkedExtension>>::extension_request_serialized(
                    &mut self.staging,
                    core,
                    &mut ctx.backends.staging,
                    request,
                    resources,
                )
            }
            (BackendKind::Staging, ExtKind::Hpke) => {
                <StagingBackend as ExtensionImpl<HpkeExtension>>::extension_request_serialized(
                    &mut self.staging,
                    core,
                    &mut ctx.backends.staging,
                    request,
                    resources,
                )
            }
            (BackendKind::Staging, ExtKind::WrapKeyToFile) => <StagingBackend as ExtensionImpl<
                WrapKeyToFileExtension,
            >>::extension_request_serialized(
                &mut self.staging,
                core,
                &mut ctx.backends.staging,
                request,
                resources,
            ),
            _ => Err(Error::RequestNotAvailable),
        }
    }
}

impl ExtensionId<AuthExtension> for PeerDispatch {
    type Id = ExtKind;
    const ID: ExtKind = ExtKind::Auth;
}
impl ExtensionId<ChunkedExtension> for PeerDispatch {
    type Id = ExtKind;
    const ID: ExtKind = ExtKind::Chunked;
}
impl ExtensionId<HpkeExtension> for PeerDispatch {
    type Id = ExtKind;
    const ID: ExtKind = ExtKind::Hpke;
}
impl ExtensionId<WrapKeyToFileExtension> for PeerDispatch {
    type Id = ExtKind;
    const ID: ExtKind = ExtKind::WrapKeyToFile;
}

/// The virt client type our runner hands out.
pub type PeerClient<'a> = trussed::virt::Client<'a, PeerDispatch>;

/// A borrowed trussed client. `Authenticator::new` takes its client by value and
/// never gives it back; lending it `&mut client` through this wrapper lets the peer
/// drop the applet on a card reset and build a new one (fresh volatile state) on
/// the same trussed service.
pub struct ClientRef<'r, C>(pub &'r mut C);

impl<C: PollClient> PollClient for ClientRef<'_, C> {
    fn request<Rq: RequestVariant>(&mut self, req: Rq) -> ClientResult<'_, Rq::Reply, Self> {
        // Queue the request on the inner client; the future only remembers which
        // client to poll, so re-wrap it around `self`.
        self.0.request(req).map(|_| ())?;
        Ok(FutureResult::new(self))
    }

    fn poll(&mut self) -> Poll<Result<Reply, Error>> {
        self.0.poll()
    }

    fn interrupt(&self) -> Option<&'static InterruptFlag> {
        self.0.interrupt()
    }
}

impl<C: trussed_core::CryptoClient> trussed_core::CryptoClient for ClientRef<'_, C> {}
impl<C: trussed_core::FilesystemClient> trussed_core::FilesystemClient for ClientRef<'_, C> {}
impl<C: trussed_core::mechanisms::Tdes> trussed_core::mechanisms::Tdes for ClientRef<'_, C> {}

impl<E: Extension, C: ExtensionClient<E>> ExtensionClient<E> for ClientRef<'_, C> {
    fn id() -> u8 {
        C::id()
    }
}
