//! `/admin/stats?scope=cluster`: the sum of every live replica's `/admin/stats`, in the same shape.

use serde_json::{Map, Value};

/// Sums stats snapshots: counters add up, `mean_latency_ms` is weighted by `attempts`, times (RFC 3339
/// strings) keep the latest, other values keep the first seen.
pub(crate) fn sum(snapshots: &[Value]) -> Value {
    snapshots.iter().fold(Value::Null, add)
}

fn add(total: Value, next: &Value) -> Value {
    match (total, next) {
        (Value::Null, next) => next.clone(),
        (Value::Object(mut total), Value::Object(next)) => {
            let weights = (attempts(&total), attempts(next));
            for (key, value) in next {
                let merged = match (key.as_str(), total.remove(key)) {
                    ("mean_latency_ms", Some(mine)) => mean(&mine, value, weights),
                    (_, Some(mine)) => add(mine, value),
                    (_, None) => value.clone(),
                };
                total.insert(key.clone(), merged);
            }
            Value::Object(total)
        }
        (Value::Number(a), Value::Number(b)) => match (a.as_u64(), b.as_u64()) {
            (Some(a), Some(b)) => Value::from(a.saturating_add(b)),
            _ => Value::from(a.as_f64().unwrap_or(0.0) + b.as_f64().unwrap_or(0.0)),
        },
        (Value::String(a), Value::String(b)) => Value::String(if b > &a { b.clone() } else { a }),
        (total, _) => total,
    }
}

fn attempts(object: &Map<String, Value>) -> f64 {
    object.get("attempts").and_then(Value::as_f64).unwrap_or(0.0)
}

fn mean(mine: &Value, theirs: &Value, (a, b): (f64, f64)) -> Value {
    let (x, y) = (mine.as_f64().unwrap_or(0.0), theirs.as_f64().unwrap_or(0.0));
    if a + b == 0.0 { Value::from(0.0) } else { Value::from((x * a + y * b) / (a + b)) }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn counters_add_means_weigh_and_times_keep_the_latest() {
        let a = json!({ "total": 2, "routes": { "r": { "total": 2, "last_fallback": "2026-01-01T00:00:00Z" } },
                        "targets": { "t": { "attempts": 1, "mean_latency_ms": 10.0, "failures": { "server": 1 } } } });
        let b = json!({ "total": 3, "routes": { "r": { "total": 3, "last_fallback": null } },
                        "targets": { "t": { "attempts": 3, "mean_latency_ms": 30.0, "failures": {} },
                                     "u": { "attempts": 1, "mean_latency_ms": 5.0, "failures": {} } } });
        let c = json!({ "total": 1, "routes": { "r": { "total": 1, "last_fallback": "2026-02-01T00:00:00Z" } } });
        let total = sum(&[a, b, c]);
        assert_eq!(total["total"], 6);
        assert_eq!(total["routes"]["r"]["total"], 6);
        assert_eq!(total["routes"]["r"]["last_fallback"], "2026-02-01T00:00:00Z");
        assert_eq!(total["targets"]["t"]["attempts"], 4);
        assert_eq!(total["targets"]["t"]["mean_latency_ms"], 25.0);
        assert_eq!(total["targets"]["t"]["failures"]["server"], 1);
        assert_eq!(total["targets"]["u"]["attempts"], 1);
    }
}
