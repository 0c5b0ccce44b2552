//! Native decoding of generated message classes whose fields are all flat (numbers, bools,
//! strings, byte strings, fixed arrays): `Decoder(cls, wire, fallback)`.
//!
//! The generated `from_bytes` is tight Python (one `struct.unpack_from` per run of fixed
//! fields) and still costs ~460 ns for a five-field tick on our VM, most of it bytecode; a
//! callback subscription runs it on its delivery thread with the GIL held, so it bounds every
//! Python -> Python figure (issue 16). Here the fields are read in Rust, straight from the
//! message the C ABI lends (no `bytes` copy first), and the class is called with them
//! positionally, exactly as `from_bytes` calls it.
//!
//! `wire` is the class's `_WIRE` tuple emitted by mycelium-codegen, one token per field in
//! wire order: `?` bool, `B H I Q` unsigned, `b h i q` signed, `f` f32, `d` f64, `S` string,
//! `Y` bytes, `<n>s` a fixed array of n bytes. Classes with nested messages or lists get no
//! `_WIRE` and keep `from_bytes`.
//!
//! Malformed input is never decoded here: whenever the native reader finds anything wrong
//! (short input, trailing bytes, invalid UTF-8, a bool byte other than 0 or 1) it hands the
//! bytes to `fallback` (the class's `from_bytes`), so the error a user sees is the generated
//! decoder's own `DecodeError`, with its field name and offset.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyFloat, PyString, PyTuple, PyType};

/// How one field is laid out on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Bool,
    U8,
    U16,
    U32,
    U64,
    I8,
    I16,
    I32,
    I64,
    F32,
    F64,
    Str,
    Bytes,
    Array(usize),
}

impl Field {
    pub(crate) fn parse(token: &str) -> Option<Field> {
        Some(match token {
            "?" => Field::Bool,
            "B" => Field::U8,
            "H" => Field::U16,
            "I" => Field::U32,
            "Q" => Field::U64,
            "b" => Field::I8,
            "h" => Field::I16,
            "i" => Field::I32,
            "q" => Field::I64,
            "f" => Field::F32,
            "d" => Field::F64,
            "S" => Field::Str,
            "Y" => Field::Bytes,
            array => {
                let n = array.strip_suffix('s')?;
                if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                Field::Array(n.parse().ok()?)
            }
        })
    }
}

/// A cursor over a payload; every read is bounds-checked and `None` past the end.
struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let slice = self.data.get(self.at..end)?;
        self.at = end;
        Some(slice)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn sized(&mut self) -> Option<&'a [u8]> {
        let len = u32::from_le_bytes(self.array()?);
        self.take(usize::try_from(len).ok()?)
    }
}

/// The float `from_bytes` makes of an f32's bits: exact for numbers, and a NaN keeps its sign
/// and payload (shifted into the f64 mantissa) rather than being quieted (see `_f32_of_bits`
/// in the generated module).
fn f32_of_bits(bits: u32) -> f64 {
    if bits & 0x7F80_0000 == 0x7F80_0000 && bits & 0x007F_FFFF != 0 {
        let wide = (u64::from(bits & 0x8000_0000) << 32)
            | 0x7FF0_0000_0000_0000
            | (u64::from(bits & 0x007F_FFFF) << 29);
        f64::from_bits(wide)
    } else {
        f64::from(f32::from_bits(bits))
    }
}

/// One field's value as read from the wire, borrowing from the payload.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Value<'a> {
    Bool(bool),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Str(&'a str),
    Bytes(&'a [u8]),
}

/// Reads every field of a payload laid out as `fields` into `out`; `None` for anything that
/// is not exactly one well-formed payload (`from_bytes` then says what is wrong).
fn read<'a>(fields: &[Field], data: &'a [u8], out: &mut Vec<Value<'a>>) -> Option<()> {
    let mut r = Reader { data, at: 0 };
    for field in fields {
        out.push(match *field {
            Field::Bool => match r.array::<1>()? {
                [0] => Value::Bool(false),
                [1] => Value::Bool(true),
                _ => return None,
            },
            Field::U8 => Value::Unsigned(u8::from_le_bytes(r.array()?).into()),
            Field::U16 => Value::Unsigned(u16::from_le_bytes(r.array()?).into()),
            Field::U32 => Value::Unsigned(u32::from_le_bytes(r.array()?).into()),
            Field::U64 => Value::Unsigned(u64::from_le_bytes(r.array()?)),
            Field::I8 => Value::Signed(i8::from_le_bytes(r.array()?).into()),
            Field::I16 => Value::Signed(i16::from_le_bytes(r.array()?).into()),
            Field::I32 => Value::Signed(i32::from_le_bytes(r.array()?).into()),
            Field::I64 => Value::Signed(i64::from_le_bytes(r.array()?)),
            Field::F32 => Value::Float(f32_of_bits(u32::from_le_bytes(r.array()?))),
            Field::F64 => Value::Float(f64::from_le_bytes(r.array()?)),
            Field::Str => Value::Str(std::str::from_utf8(r.sized()?).ok()?),
            Field::Bytes => Value::Bytes(r.sized()?),
            Field::Array(n) => Value::Bytes(r.take(n)?),
        });
    }
    (r.at == data.len()).then_some(())
}

impl<'a> Value<'a> {
    fn into_py<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(match self {
            Value::Bool(b) => PyBool::new(py, b).to_owned().into_any(),
            Value::Unsigned(v) => v.into_pyobject(py)?.into_any(),
            Value::Signed(v) => v.into_pyobject(py)?.into_any(),
            Value::Float(v) => PyFloat::new(py, v).into_any(),
            Value::Str(s) => PyString::new(py, s).into_any(),
            Value::Bytes(b) => PyBytes::new(py, b).into_any(),
        })
    }
}

/// Decodes payloads of one generated message class natively (see the module comment).
#[pyclass(frozen, module = "mycelium_native._native")]
pub struct Decoder {
    cls: Py<PyType>,
    fields: Vec<Field>,
    fallback: Py<PyAny>,
    /// Set when the caller gave the field names: the object is then made by the class's
    /// `tp_new` and its slots filled one by one, skipping the dataclass's Python `__init__`
    /// (a frame per message; ~145 ns of the ~460 `from_bytes` took).
    fill: Option<Fill>,
}

/// How to make an instance without calling the class: its `tp_new` and the interned names of
/// its fields in wire order.
struct Fill {
    new: pyo3::ffi::newfunc,
    names: Vec<Py<PyString>>,
}

impl Fill {
    /// `None` unless `cls` is a heap type (a class statement's; `PyType_GetSlot` needs one
    /// before Python 3.10) with a `tp_new`.
    fn of(cls: &Bound<'_, PyType>, names: Vec<String>) -> Option<Fill> {
        let py = cls.py();
        let ty = cls.as_type_ptr();
        // SAFETY: `ty` is a live type object (we hold `cls`) and the GIL is held.
        let flags = unsafe { pyo3::ffi::PyType_GetFlags(ty) };
        if flags & pyo3::ffi::Py_TPFLAGS_HEAPTYPE == 0 {
            return None;
        }
        // SAFETY: as above; a heap type answers PyType_GetSlot on every supported Python.
        let slot = unsafe { pyo3::ffi::PyType_GetSlot(ty, pyo3::ffi::Py_tp_new) };
        if slot.is_null() {
            return None;
        }
        // SAFETY: the Py_tp_new slot holds a `newfunc` (CPython's type slot table).
        let new = unsafe { std::mem::transmute::<*mut std::ffi::c_void, pyo3::ffi::newfunc>(slot) };
        let names = names
            .iter()
            .map(|n| PyString::intern(py, n).unbind())
            .collect();
        Some(Fill { new, names })
    }

    /// An instance of `cls` with `values` in its fields, as the dataclass `__init__` would set
    /// them (`object.__setattr__`, so a frozen class works too).
    fn make<'py>(
        &self,
        cls: &Bound<'py, PyType>,
        values: Vec<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = cls.py();
        let no_args = PyTuple::empty(py);
        // SAFETY: `new` is `cls`'s own tp_new, called as CPython's type call does (the type,
        // an argument tuple, no keywords) with the GIL held; it returns a new reference or
        // NULL with an exception set.
        let raw = unsafe { (self.new)(cls.as_type_ptr(), no_args.as_ptr(), std::ptr::null_mut()) };
        // SAFETY: a new (owned) reference or NULL, as above.
        let object = unsafe { Bound::from_owned_ptr_or_err(py, raw) }?;
        for (name, value) in self.names.iter().zip(values) {
            // SAFETY: all three are live objects and the GIL is held; returns -1 with an
            // exception set on failure.
            let status = unsafe {
                pyo3::ffi::PyObject_GenericSetAttr(object.as_ptr(), name.as_ptr(), value.as_ptr())
            };
            if status != 0 {
                return Err(PyErr::fetch(py));
            }
        }
        Ok(object)
    }
}

impl Decoder {
    /// The message decoded from `data`: natively when it is well-formed, else whatever the
    /// class's `from_bytes` makes of it (its `DecodeError`, normally).
    pub(crate) fn decode<'py>(&self, py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
        let mut values = Vec::with_capacity(self.fields.len());
        if read(&self.fields, data, &mut values).is_none() {
            return self.fallback.bind(py).call1((PyBytes::new(py, data),));
        }
        let args = values
            .into_iter()
            .map(|v| v.into_py(py))
            .collect::<PyResult<Vec<_>>>()?;
        let cls = self.cls.bind(py);
        match &self.fill {
            Some(fill) => fill.make(cls, args),
            None => cls.call1(PyTuple::new(py, args)?),
        }
    }
}

#[pymethods]
impl Decoder {
    /// A decoder calling `message_type(*fields)` for payloads laid out as `wire` says (the class's
    /// `_WIRE`), and `fallback(data)` (its `from_bytes`) for anything malformed. With `names`
    /// (its fields in wire order) it skips `message_type.__init__` and sets the fields itself: only for
    /// a class whose `__init__` does nothing else (a generated dataclass).
    #[new]
    #[pyo3(signature = (message_type, wire, fallback, names=None))]
    fn new(
        message_type: Bound<'_, PyType>,
        wire: Vec<String>,
        fallback: Bound<'_, PyAny>,
        names: Option<Vec<String>>,
    ) -> PyResult<Self> {
        let fields = wire
            .iter()
            .map(|token| {
                Field::parse(token).ok_or_else(|| {
                    PyValueError::new_err(format!(
                        "unknown wire token {token:?} in the _WIRE of {} (regenerate the \
                         contracts with this version of mycelium-codegen)",
                        message_type
                            .name()
                            .map(|n| n.to_string())
                            .unwrap_or_default()
                    ))
                })
            })
            .collect::<PyResult<Vec<_>>>()?;
        if !fallback.is_callable() {
            return Err(PyValueError::new_err(
                "fallback must be callable (the class's from_bytes)",
            ));
        }
        let fill = match names {
            Some(names) if names.len() != fields.len() => {
                return Err(PyValueError::new_err(format!(
                    "{} names for {} wire fields",
                    names.len(),
                    fields.len()
                )))
            }
            Some(names) => Fill::of(&message_type, names),
            None => None,
        };
        Ok(Decoder {
            cls: message_type.unbind(),
            fields,
            fallback: fallback.unbind(),
            fill,
        })
    }

    /// Decodes one payload (bytes, bytearray or memoryview) as the class's `from_bytes` does.
    fn __call__<'py>(&self, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = data.py();
        if let Ok(bytes) = data.cast::<PyBytes>() {
            return self.decode(py, bytes.as_bytes());
        }
        if let Ok(array) = data.cast::<PyByteArray>() {
            // Copied first: a bytearray may change size under us while Python objects are made.
            let owned = array.to_vec();
            return self.decode(py, &owned);
        }
        self.fallback.bind(py).call1((data,))
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let name = self
            .cls
            .bind(py)
            .name()
            .map(|n| n.to_string())
            .unwrap_or_default();
        format!(
            "<mycelium_native._native.Decoder for {name}: {} fields>",
            self.fields.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_and_unknown_ones_do_not() {
        assert_eq!(Field::parse("Q"), Some(Field::U64));
        assert_eq!(Field::parse("S"), Some(Field::Str));
        assert_eq!(Field::parse("16s"), Some(Field::Array(16)));
        for bad in ["", "s", "x", "4", "-1s", "+1s", "QQ", "ss"] {
            assert_eq!(Field::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn f32_bits_become_the_float_from_bytes_makes() {
        assert_eq!(f32_of_bits(1.5f32.to_bits()), 1.5);
        assert_eq!(f32_of_bits(0x8000_0000), -0.0);
        assert!(f32_of_bits(0x8000_0000).is_sign_negative());
        // A signalling NaN keeps its payload: bits 0x7F800001 -> mantissa 1 << 29.
        assert_eq!(f32_of_bits(0x7F80_0001).to_bits(), 0x7FF0_0000_2000_0000);
        assert_eq!(f32_of_bits(0xFFC0_0000).to_bits(), 0xFFF8_0000_0000_0000);
    }

    #[test]
    fn well_formed_payloads_read_and_anything_else_does_not() {
        use Field::*;
        let fields = [Str, F64, U32, Bool, Array(2), I16];
        let mut data = vec![2, 0, 0, 0, b'h', b'i'];
        data.extend(1.5f64.to_le_bytes());
        data.extend(7u32.to_le_bytes());
        data.push(1);
        data.extend(b"xy");
        data.extend((-3i16).to_le_bytes());
        let mut out = Vec::new();
        assert_eq!(read(&fields, &data, &mut out), Some(()));
        assert_eq!(
            out,
            [
                Value::Str("hi"),
                Value::Float(1.5),
                Value::Unsigned(7),
                Value::Bool(true),
                Value::Bytes(b"xy"),
                Value::Signed(-3),
            ]
        );
        // Every truncation, one trailing byte, a bool of 2, invalid UTF-8: all refused.
        for cut in 0..data.len() {
            assert_eq!(
                read(&fields, &data[..cut], &mut Vec::new()),
                None,
                "cut {cut}"
            );
        }
        let mut longer = data.clone();
        longer.push(0);
        assert_eq!(read(&fields, &longer, &mut Vec::new()), None);
        let mut bad_bool = data.clone();
        bad_bool[6 + 8 + 4] = 2;
        assert_eq!(read(&fields, &bad_bool, &mut Vec::new()), None);
        let mut bad_utf8 = data.clone();
        bad_utf8[4] = 0xFF;
        assert_eq!(read(&fields, &bad_utf8, &mut Vec::new()), None);
    }

    #[test]
    fn the_reader_stops_at_the_end() {
        let mut r = Reader {
            data: &[3, 0, 0, 0, b'a', b'b'],
            at: 0,
        };
        assert_eq!(r.sized(), None);
        let mut r = Reader {
            data: &[2, 0, 0, 0, b'a', b'b'],
            at: 0,
        };
        assert_eq!(r.sized(), Some(&b"ab"[..]));
        assert_eq!(r.take(1), None);
        let mut r = Reader {
            data: &[0xFF, 0xFF, 0xFF, 0xFF],
            at: 0,
        };
        assert_eq!(r.sized(), None);
    }
}
