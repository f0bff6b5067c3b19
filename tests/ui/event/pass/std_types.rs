//! The std types the runtime describes: `Option`, `Vec`, `HashMap`, `BTreeMap`, arrays, tuples,
//! `Box`.

use std::collections::{BTreeMap, HashMap};

use opsc_events::__private::Shape;
use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(EventSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Port {
    pub number: u16,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "network")]
pub struct SwitchInventoried {
    pub hostname: Option<String>,
    pub ports: Vec<Port>,
    pub labels: HashMap<String, String>,
    pub vlans: BTreeMap<String, Vec<u16>>,
    pub mac: [u8; 6],
    pub uplink: (String, u16),
    pub parent: Option<Box<Port>>,
    pub uptime: f64,
    pub managed: bool,
    pub code: char,
}

fn main() {
    let Shape::Struct(s) = SwitchInventoried::SHAPE else {
        panic!("not a struct")
    };
    let shape = |name: &str| *s.fields.iter().find(|f| f.name == name).unwrap().shape;
    assert_eq!(shape("hostname"), Shape::Option(&Shape::String));
    assert_eq!(shape("ports"), Shape::Seq(Port::SHAPE));
    assert_eq!(shape("labels"), Shape::Map(&Shape::String, &Shape::String));
    assert_eq!(
        shape("vlans"),
        Shape::Map(&Shape::String, <Vec<u16>>::SHAPE)
    );
    assert_eq!(shape("mac"), Shape::Array(u8::SHAPE, 6));
    assert_eq!(shape("uplink"), Shape::Tuple(&[&Shape::String, u16::SHAPE]));
    // `Box<T>` is `T` on the wire.
    assert_eq!(shape("parent"), Shape::Option(Port::SHAPE));

    let event = SwitchInventoried {
        hostname: Some("sw-1".into()),
        ports: vec![Port { number: 1 }, Port { number: 48 }],
        labels: HashMap::from([("rack".into(), "r4".into())]),
        vlans: BTreeMap::from([("prod".into(), vec![10, 20])]),
        mac: [0, 1, 2, 3, 4, 5],
        uplink: ("core-1".into(), 49),
        parent: Some(Box::new(Port { number: 52 })),
        uptime: 12.5,
        managed: true,
        code: 'x',
    };
    let entry = envelope::encode(&event, &Metadata::new("netbox")).unwrap();
    let env = Envelope::from_fields(entry.fields().map(|(k, v)| (k.as_bytes(), v))).unwrap();
    let decoded: SwitchInventoried = envelope::decode_event(&env).unwrap();
    assert_eq!(decoded, event);
}
