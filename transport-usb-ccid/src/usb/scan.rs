//! Finding CCID interfaces in a configuration descriptor (pure: bytes in, interfaces out).

use std::vec::Vec;

use nusb::descriptors::{ConfigurationDescriptor, TransferType};
use nusb::transfer::Direction;

/// The USB interface class of smart card readers (CCID).
pub const CLASS_CCID: u8 = 0x0B;
/// Vendor-specific interface class: some early readers announce CCID this way, recognisable by
/// their CCID class descriptor.
pub const CLASS_VENDOR: u8 = 0xFF;
/// The descriptor type of the CCID class descriptor (CCID 1.1 §5.1).
pub const CCID_DESCRIPTOR_TYPE: u8 = 0x21;
/// The class descriptor type a few class-0x0B readers use instead.
pub const VENDOR_DESCRIPTOR_TYPE: u8 = 0xFF;
/// The length of the CCID class descriptor.
pub const CCID_DESCRIPTOR_LEN: usize = 54;

/// One endpoint of a reader's interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndpointInfo {
    /// The endpoint address (bit 7 set for IN).
    pub address: u8,
    /// Its maximum packet size in bytes.
    pub max_packet_size: usize,
}

/// The endpoints a CCID interface uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoints {
    /// Bulk IN: the reader's responses.
    pub bulk_in: EndpointInfo,
    /// Bulk OUT: the host's commands.
    pub bulk_out: EndpointInfo,
    /// Interrupt IN: NotifySlotChange and HardwareError, when the reader has one.
    pub interrupt_in: Option<EndpointInfo>,
}

/// A CCID interface found in a configuration descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundInterface {
    /// `bInterfaceNumber`.
    pub number: u8,
    /// `bAlternateSetting`.
    pub alt_setting: u8,
    /// `bInterfaceClass`: 0x0B, or 0xFF for a vendor-class reader.
    pub class: u8,
    /// `bInterfaceProtocol`: 0 for bulk CCID, 1 and 2 for ICCD.
    pub protocol: u8,
    /// The 54 bytes of the CCID class descriptor.
    pub class_descriptor: [u8; CCID_DESCRIPTOR_LEN],
    /// The endpoints, when the interface has a bulk pair.
    pub endpoints: Option<Endpoints>,
}

/// Every CCID interface of `config` (a configuration descriptor followed by its interface,
/// endpoint and class descriptors, as read from the device): interface class 0x0B, or 0xFF
/// with a 54-byte descriptor of type 0x21 among its extra descriptors. A class-0x0B interface
/// without a well-formed class descriptor is skipped (nothing can be said about its reader).
/// Never panics, whatever the bytes.
pub fn ccid_interfaces(config: &[u8]) -> Vec<FoundInterface> {
    let Some(config) = ConfigurationDescriptor::new(config) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for intf in config.interface_alt_settings() {
        if intf.class() != CLASS_CCID && intf.class() != CLASS_VENDOR {
            continue;
        }
        // The class descriptor sits after the interface descriptor; a few readers put it after
        // the endpoints, which the interface's trailing descriptors include as well.
        // Some class-0x0B readers give their class descriptor type 0xFF.
        let is_ccid_type = |t: u8| {
            t == CCID_DESCRIPTOR_TYPE || (t == VENDOR_DESCRIPTOR_TYPE && intf.class() == CLASS_CCID)
        };
        let class_descriptor = intf.descriptors().find_map(|d| {
            is_ccid_type(d.descriptor_type())
                .then(|| <[u8; CCID_DESCRIPTOR_LEN]>::try_from(d.as_bytes()).ok())
                .flatten()
        });
        let Some(class_descriptor) = class_descriptor else {
            continue;
        };
        let mut bulk_in = None;
        let mut bulk_out = None;
        let mut interrupt_in = None;
        for ep in intf.endpoints() {
            let info = EndpointInfo {
                address: ep.address(),
                max_packet_size: ep.max_packet_size(),
            };
            if info.max_packet_size == 0 {
                continue;
            }
            match (ep.transfer_type(), ep.direction()) {
                (TransferType::Bulk, Direction::In) => {
                    bulk_in.get_or_insert(info);
                }
                (TransferType::Bulk, Direction::Out) => {
                    bulk_out.get_or_insert(info);
                }
                (TransferType::Interrupt, Direction::In) => {
                    interrupt_in.get_or_insert(info);
                }
                _ => {}
            }
        }
        let endpoints = match (bulk_in, bulk_out) {
            (Some(bulk_in), Some(bulk_out)) => Some(Endpoints {
                bulk_in,
                bulk_out,
                interrupt_in,
            }),
            _ => None,
        };
        found.push(FoundInterface {
            number: intf.interface_number(),
            alt_setting: intf.alternate_setting(),
            class: intf.class(),
            protocol: intf.protocol(),
            class_descriptor,
            endpoints,
        });
    }
    found
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use hex_literal::hex;
    use proptest::prelude::*;

    /// The configuration descriptor of QEMU 10.0.2's `usb-ccid` reader, as read from
    /// `/sys/bus/usb/devices/1-1/descriptors` inside the guest (after the 18-byte device
    /// descriptor).
    pub(crate) const QEMU_CONFIG: [u8; 93] = hex!(
        "09 02 5d 00 01 01 00 e0 32"
        "09 04 00 00 03 0b 00 00 04"
        "36 21 10 01 00 07 01 00 00 00 a0 0f 00 00 00 00 01 00 00 80 25 00 00 00 c2 01 00 00"
        "fe 00 00 00 00 00 00 00 00 00 00 00 fe 04 01 00 12 00 01 00 ff ff 00 00 01 01"
        "07 05 81 03 40 00 ff"
        "07 05 82 02 40 00 00"
        "07 05 03 02 40 00 00"
    );

    #[test]
    fn finds_qemus_reader_with_its_endpoints() {
        let found = ccid_interfaces(&QEMU_CONFIG);
        assert_eq!(found.len(), 1);
        let f = &found[0];
        assert_eq!((f.number, f.alt_setting), (0, 0));
        assert_eq!(f.class_descriptor[0..2], [0x36, 0x21]);
        assert_eq!((f.class, f.protocol), (0x0B, 0));
        let desc = crate::descriptor::ClassDescriptor::parse(&f.class_descriptor);
        assert_eq!(desc.map(|d| d.max_message_length), Ok(65554));
        assert_eq!(
            f.endpoints,
            Some(Endpoints {
                bulk_in: EndpointInfo {
                    address: 0x82,
                    max_packet_size: 64
                },
                bulk_out: EndpointInfo {
                    address: 0x03,
                    max_packet_size: 64
                },
                interrupt_in: Some(EndpointInfo {
                    address: 0x81,
                    max_packet_size: 64
                }),
            })
        );
    }

    #[test]
    fn vendor_class_needs_the_ccid_descriptor() {
        let mut vendor = QEMU_CONFIG;
        vendor[9 + 5] = CLASS_VENDOR;
        assert_eq!(ccid_interfaces(&vendor).len(), 1);
        // Without a 54-byte descriptor of type 0x21 it is some other vendor device.
        vendor[9 + 9 + 1] = 0xFF;
        assert!(ccid_interfaces(&vendor).is_empty());
        // A class-0x0B reader whose descriptor says 0xFF is still a reader.
        let mut odd = QEMU_CONFIG;
        odd[9 + 9 + 1] = 0xFF;
        assert_eq!(ccid_interfaces(&odd).len(), 1);
        odd[9 + 9 + 1] = 0x22;
        assert!(ccid_interfaces(&odd).is_empty());
        // And a mass-storage interface is no reader even with a stray 0x21 descriptor.
        let mut storage = QEMU_CONFIG;
        storage[9 + 5] = 0x08;
        assert!(ccid_interfaces(&storage).is_empty());
    }

    #[test]
    fn descriptor_after_the_endpoints_is_found_too() {
        let mut moved = std::vec::Vec::new();
        moved.extend_from_slice(&QEMU_CONFIG[..18]);
        moved.extend_from_slice(&QEMU_CONFIG[72..]);
        moved.extend_from_slice(&QEMU_CONFIG[18..72]);
        let found = ccid_interfaces(&moved);
        assert_eq!(found.len(), 1);
        assert!(found[0].endpoints.is_some());
    }

    #[test]
    fn interface_without_bulk_pair_has_no_endpoints() {
        let mut cfg = QEMU_CONFIG;
        // Turn bulk OUT 0x03 into an interrupt endpoint.
        cfg[86 + 3] = 0x03;
        let found = ccid_interfaces(&cfg);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].endpoints, None);
    }

    proptest! {
        #[test]
        fn never_panics_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = ccid_interfaces(&bytes);
        }

        #[test]
        fn never_panics_on_corrupted_real_descriptor(
            edits in proptest::collection::vec((0usize..93, any::<u8>()), 0..8),
            cut in 0usize..=93,
        ) {
            let mut cfg = QEMU_CONFIG;
            for (i, b) in edits {
                cfg[i] = b;
            }
            let _ = ccid_interfaces(&cfg[..cut]);
        }
    }
}
