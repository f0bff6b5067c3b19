//! Human-readable rendering of shapes and schemas, used by logs and the `opsc schema` command.

use std::fmt;

use super::{Field, Schema, Shape, Tagging, VariantKind};

fn fields(f: &mut fmt::Formatter<'_>, fs: &[Field]) -> fmt::Result {
    f.write_str("{ ")?;
    for (i, field) in fs.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        let opt = if field.optional { "?" } else { "" };
        write!(f, "{}{opt}: {}", field.name, field.shape)?;
    }
    f.write_str(if fs.is_empty() { "}" } else { " }" })
}

fn items(f: &mut fmt::Formatter<'_>, items: &[&Shape]) -> fmt::Result {
    f.write_str("(")?;
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{s}")?;
    }
    f.write_str(")")
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Unit => f.write_str("()"),
            Shape::Bool => f.write_str("bool"),
            Shape::Int(k) => f.write_str(k.name()),
            Shape::F32 => f.write_str("f32"),
            Shape::F64 => f.write_str("f64"),
            Shape::Char => f.write_str("char"),
            Shape::String => f.write_str("string"),
            Shape::Option(s) => write!(f, "option<{s}>"),
            Shape::Seq(s) => write!(f, "[{s}]"),
            Shape::Array(s, n) => write!(f, "[{s}; {n}]"),
            // An empty tuple is how a unit struct looks on the wire: an empty array.
            Shape::Tuple([]) => f.write_str("[]"),
            Shape::Tuple(ts) => items(f, ts),
            Shape::Map(k, v) => write!(f, "map<{k}, {v}>"),
            Shape::Struct(st) => {
                write!(f, "{} ", st.name)?;
                fields(f, st.fields)
            }
            Shape::Newtype(name, s) => write!(f, "{name}({s})"),
            Shape::Enum(en) => {
                write!(f, "enum {}", en.name)?;
                match en.tagging {
                    Tagging::External => {}
                    Tagging::Internal { tag } => write!(f, " (tag = {tag:?})")?,
                    Tagging::Adjacent { tag, content } => {
                        write!(f, " (tag = {tag:?}, content = {content:?})")?
                    }
                }
                f.write_str(" { ")?;
                for (i, v) in en.variants.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" | ")?;
                    }
                    f.write_str(v.name)?;
                    match v.kind {
                        VariantKind::Unit => {}
                        VariantKind::Newtype(s) => write!(f, "({s})")?,
                        VariantKind::Tuple(ts) => items(f, ts)?,
                        VariantKind::Struct(fs) => {
                            f.write_str(" ")?;
                            fields(f, fs)?
                        }
                    }
                }
                f.write_str(" }")
            }
            Shape::Opaque(name) => f.write_str(name),
        }
    }
}

impl fmt::Display for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} v{} [{:016x}] {}",
            self.stream, self.name, self.version, self.fingerprint, self.shape
        )?;
        for older in &self.upcast_from {
            write!(f, "\n  upcast from {older}")?;
        }
        Ok(())
    }
}
