//! Channels and their reducers.

use serde_json::{Map, Value};
use std::fmt;
use std::sync::Arc;

/// Custom reducer: (current, update) → new value.
pub type ReduceFn = Arc<dyn Fn(&Value, &Value) -> Result<Value, String> + Send + Sync>;

#[derive(Clone)]
pub enum Reducer {
    /// The last write wins; two writes in one step are an error.
    LastValue,
    /// A list; each write appends (an array appends all its items).
    Append,
    /// An object; each write merges its keys in.
    Merge,
    Custom(ReduceFn),
}

impl fmt::Debug for Reducer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reducer::LastValue => "LastValue",
            Reducer::Append => "Append",
            Reducer::Merge => "Merge",
            Reducer::Custom(_) => "Custom",
        })
    }
}

impl Reducer {
    pub(crate) fn empty(&self) -> Value {
        match self {
            Reducer::Append => Value::Array(Vec::new()),
            Reducer::Merge => Value::Object(Map::new()),
            _ => Value::Null,
        }
    }

    /// Applies the writes one step made to a channel. Returns the new value and the delta
    /// to store in the checkpoint (appended items, merged keys, or the new value).
    pub(crate) fn apply(
        &self,
        channel: &str,
        current: &Value,
        writes: &[Value],
    ) -> Result<(Value, Value), String> {
        match self {
            Reducer::LastValue => match writes {
                [one] => Ok((one.clone(), one.clone())),
                _ => Err(format!(
                    "channel {channel:?} is last-value and received {} writes in one step; give it a reducer",
                    writes.len()
                )),
            },
            Reducer::Append => {
                let mut items = match current {
                    Value::Array(a) => a.clone(),
                    Value::Null => Vec::new(),
                    other => vec![other.clone()],
                };
                let mut added = Vec::new();
                for w in writes {
                    match w {
                        Value::Array(a) => added.extend(a.iter().cloned()),
                        other => added.push(other.clone()),
                    }
                }
                items.extend(added.iter().cloned());
                Ok((Value::Array(items), Value::Array(added)))
            }
            Reducer::Merge => {
                let mut obj = match current {
                    Value::Object(o) => o.clone(),
                    _ => Map::new(),
                };
                let mut delta = Map::new();
                for w in writes {
                    let Value::Object(o) = w else {
                        return Err(format!("channel {channel:?} merges objects; got {w}"));
                    };
                    for (k, v) in o {
                        obj.insert(k.clone(), v.clone());
                        delta.insert(k.clone(), v.clone());
                    }
                }
                Ok((Value::Object(obj), Value::Object(delta)))
            }
            Reducer::Custom(f) => {
                let mut v = current.clone();
                for w in writes {
                    v = f(&v, w).map_err(|e| format!("reducer of channel {channel:?}: {e}"))?;
                }
                Ok((v.clone(), v))
            }
        }
    }

    /// Replays a stored delta onto a value (state reconstruction from checkpoints).
    pub(crate) fn replay(&self, current: &Value, delta: &Value) -> Value {
        match self {
            Reducer::Append => {
                let mut items = current.as_array().cloned().unwrap_or_default();
                items.extend(delta.as_array().cloned().unwrap_or_default());
                Value::Array(items)
            }
            Reducer::Merge => {
                let mut obj = current.as_object().cloned().unwrap_or_default();
                if let Some(d) = delta.as_object() {
                    for (k, v) in d {
                        obj.insert(k.clone(), v.clone());
                    }
                }
                Value::Object(obj)
            }
            _ => delta.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reducers_apply_and_replay() {
        let (v, d) = Reducer::Append
            .apply("m", &json!([1]), &[json!(2), json!([3, 4])])
            .unwrap();
        assert_eq!((v, d.clone()), (json!([1, 2, 3, 4]), json!([2, 3, 4])));
        assert_eq!(Reducer::Append.replay(&json!([1]), &d), json!([1, 2, 3, 4]));
        let (v, d) = Reducer::Merge
            .apply("o", &json!({"a": 1}), &[json!({"b": 2}), json!({"a": 3})])
            .unwrap();
        assert_eq!((v, d), (json!({"a": 3, "b": 2}), json!({"b": 2, "a": 3})));
        assert!(
            Reducer::LastValue
                .apply("x", &json!(1), &[json!(2), json!(3)])
                .unwrap_err()
                .contains("2 writes")
        );
        let sum: ReduceFn = Arc::new(|a, b| {
            Ok(json!(
                a.as_i64().unwrap_or(0) + b.as_i64().ok_or("not a number")?
            ))
        });
        let (v, _) = Reducer::Custom(sum.clone())
            .apply("n", &json!(1), &[json!(2), json!(3)])
            .unwrap();
        assert_eq!(v, json!(6));
        assert!(
            Reducer::Custom(sum)
                .apply("n", &json!(1), &[json!("x")])
                .is_err()
        );
        assert!(Reducer::Merge.apply("o", &json!({}), &[json!(1)]).is_err());
    }
}
