//! The host backend: CCID readers over USB through [`nusb`] (Linux, macOS, Windows).
//!
//! - [`list`] finds every CCID interface on the machine (class 0x0B, or vendor class 0xFF with a
//!   CCID class descriptor) without claiming anything.
//! - [`open`] claims one (detaching a kernel driver if one is bound) and returns a [`UsbPipe`]:
//!   the bulk pair as an `embedded_io_async` byte pipe for [`crate::session::Session`].
//!   [`UsbPipe::control`] gives the session its control channel ([`UsbControl`]: ABORT, clear
//!   halt) and [`UsbPipe::take_events`] the interrupt endpoint ([`UsbEvents`]: card inserted or
//!   removed).
//! - [`StdClock`] is the session's clock on a host.
//!
//! USB packet rules this backend keeps (the reasons are in docs/card-facts.md):
//! - One CCID message is written as ONE bulk OUT transfer, without a zero-length packet after a
//!   message whose length is a multiple of the packet size (usbd-ccid resets on it).
//! - A bulk IN transfer asks for a multiple of the packet size, at most what the caller's read
//!   asked for rounded up to a packet: a session that reads a message's header and then its
//!   body never makes a transfer reach into the next message, so a reader that ends a message on
//!   a packet boundary without a zero-length packet still works. Zero-length completions (a
//!   reader's trailing ZLP) are skipped, never returned as `Ok(0)`.
//! - A transfer that ends short ends the CCID message in progress: bytes past the header's
//!   `dwLength` in it are dropped (QEMU's reader sends 7 after a GetParameters reply of
//!   `dwLength` 0), so they never pose as the next reply.
//! - Reads are cancel safe: a transfer stays queued on the endpoint when the read is dropped, and
//!   whatever it brings is kept for the next read.
//!
//! ```no_run
//! use cardunlock_ccid::session::Session;
//! use cardunlock_ccid::usb::{self, StdClock};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let readers = usb::list()?;
//! let reader = readers.first().ok_or("no CCID reader")?;
//! let pipe = usb::open(reader)?;
//! let control = pipe.control();
//! let mut session: Session<usb::UsbPipe, StdClock, usb::UsbControl> =
//!     Session::new(pipe, StdClock::new(), control, &reader.descriptor, 0)
//!         .map_err(|e| format!("{e}"))?;
//! let atr = session.power_on().await.map_err(|e| format!("{e}"))?;
//! println!("{}: ATR {atr:02x?}", reader.name);
//! # Ok(()) }
//! ```

mod clock;
mod error;
mod events;
mod framing;
mod pipe;
mod scan;

use std::format;
use std::string::String;
use std::vec::Vec;

use nusb::{DeviceInfo, MaybeFuture};

use crate::descriptor::ClassDescriptor;

pub use clock::StdClock;
pub use error::UsbError;
pub use events::{parse_event, ReaderEvent, SlotStates, UsbEvents};
pub use pipe::{UsbControl, UsbPipe};
pub use scan::{EndpointInfo, Endpoints, CCID_DESCRIPTOR_LEN};

/// A CCID reader interface found by [`list`].
#[derive(Clone, Debug)]
pub struct ReaderInfo {
    /// Manufacturer and product strings (`"QEMU QEMU USB CCID"`), or `VID:PID` in hex when the
    /// device has no strings; ` (interface N)` is appended when a device has several CCID
    /// interfaces.
    pub name: String,
    /// `idVendor`.
    pub vendor_id: u16,
    /// `idProduct`.
    pub product_id: u16,
    /// The bus the device is on, as the OS names it (Linux: the bus number, `"1"`).
    pub bus_id: String,
    /// The device's address on its bus (Linux: the `/dev/bus/usb/BBB/DDD` number).
    pub address: u8,
    /// The iSerialNumber string, when the OS had it cached.
    pub serial_number: Option<String>,
    /// `bInterfaceNumber` of the CCID interface.
    pub interface_number: u8,
    /// `bAlternateSetting` of the CCID interface.
    pub alt_setting: u8,
    /// `bInterfaceClass`: 0x0B, or 0xFF for a vendor-class reader.
    pub interface_class: u8,
    /// `bInterfaceProtocol`: 0 bulk CCID; 1 and 2 are ICCD (give it to the session's
    /// `Config::interface_protocol`, which refuses ICCD).
    pub interface_protocol: u8,
    /// The CCID class descriptor: exchange level, message size, protocols, slots.
    pub descriptor: ClassDescriptor,
    /// The same descriptor's 54 raw bytes, as the device sent them.
    pub class_descriptor: [u8; CCID_DESCRIPTOR_LEN],
    /// The interface's endpoints; `None` when it has no bulk pair ([`open`] then fails).
    pub endpoints: Option<Endpoints>,
    device: DeviceInfo,
}

impl ReaderInfo {
    /// A stable identifier while the device stays plugged in: `bus:address:interface`.
    pub fn id(&self) -> String {
        format!("{}:{}:{}", self.bus_id, self.address, self.interface_number)
    }
}

/// Lists every CCID reader interface on the machine. Reading the descriptors does not claim or
/// disturb a reader another program uses. A device whose descriptors cannot be read (no
/// permission on a platform where that needs opening it) is left out.
pub fn list() -> Result<Vec<ReaderInfo>, UsbError> {
    let devices = nusb::list_devices().wait().map_err(UsbError::List)?;
    let mut readers = Vec::new();
    for device in devices {
        // A CCID interface shows in the cached interface list; skip everything else cheaply.
        if !device
            .interfaces()
            .any(|i| i.class() == scan::CLASS_CCID || i.class() == scan::CLASS_VENDOR)
        {
            continue;
        }
        let Some(config) = active_configuration(&device) else {
            continue;
        };
        let found = scan::ccid_interfaces(&config);
        let base = device_name(&device);
        let several = found.len() > 1;
        for intf in found {
            let Ok(descriptor) = ClassDescriptor::parse(&intf.class_descriptor) else {
                continue;
            };
            let name = if several {
                format!("{base} (interface {})", intf.number)
            } else {
                base.clone()
            };
            readers.push(ReaderInfo {
                name,
                vendor_id: device.vendor_id(),
                product_id: device.product_id(),
                bus_id: device.bus_id().into(),
                address: device.device_address(),
                serial_number: device.serial_number().map(Into::into),
                interface_number: intf.number,
                alt_setting: intf.alt_setting,
                interface_class: intf.class,
                interface_protocol: intf.protocol,
                descriptor,
                class_descriptor: intf.class_descriptor,
                endpoints: intf.endpoints,
                device: device.clone(),
            });
        }
    }
    Ok(readers)
}

fn device_name(device: &DeviceInfo) -> String {
    let parts: Vec<&str> = [device.manufacturer_string(), device.product_string()]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if parts.is_empty() {
        format!("{:04x}:{:04x}", device.vendor_id(), device.product_id())
    } else {
        parts.join(" ")
    }
}

/// The active configuration descriptor. On Linux it is read from sysfs (world-readable: listing
/// needs no access to the device node); elsewhere the device is opened.
fn active_configuration(device: &DeviceInfo) -> Option<Vec<u8>> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        if let Some(config) = sysfs_configuration(device) {
            return Some(config);
        }
    }
    let opened = device.open().wait().ok()?;
    let config = opened.active_configuration().ok()?;
    Some(config.as_bytes().to_vec())
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn sysfs_configuration(device: &DeviceInfo) -> Option<Vec<u8>> {
    let path = device.sysfs_path();
    let all = std::fs::read(path.join("descriptors")).ok()?;
    let active: u8 = std::fs::read_to_string(path.join("bConfigurationValue"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    // The device descriptor (18 bytes), then each configuration with its wTotalLength.
    let mut rest = all.get(18..)?;
    let mut first = None;
    while let Some(config) = nusb::descriptors::ConfigurationDescriptor::new(rest) {
        let bytes = config.as_bytes();
        if config.configuration_value() == active {
            return Some(bytes.to_vec());
        }
        first.get_or_insert_with(|| bytes.to_vec());
        rest = rest.get(bytes.len()..)?;
    }
    first
}

/// Opens `reader`: claims its interface for this process (detaching a kernel driver bound to it)
/// and its endpoints.
///
/// A reader held by another process (pcscd's libccid claims the readers it serves) gives
/// [`UsbError::Busy`], whose message tells the user what to do.
pub fn open(reader: &ReaderInfo) -> Result<UsbPipe, UsbError> {
    let endpoints = reader.endpoints.ok_or_else(|| UsbError::MissingEndpoint {
        reader: reader.name.clone(),
    })?;
    let fail = |e| UsbError::from_open(&reader.name, e);
    let device = reader.device.open().wait().map_err(fail)?;
    let interface = device
        .detach_and_claim_interface(reader.interface_number)
        .wait()
        .map_err(fail)?;
    if reader.alt_setting != interface.get_alt_setting() {
        interface
            .set_alt_setting(reader.alt_setting)
            .wait()
            .map_err(fail)?;
    }
    pipe::UsbPipe::new(
        reader.name.clone(),
        interface,
        endpoints,
        reader.descriptor.max_message_length,
    )
}
