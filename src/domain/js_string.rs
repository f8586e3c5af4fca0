//! JavaScript's `String(value)` of a JSON value: how Medusa 2.21 (zod 4) prints what it received.
//!
//! Medusa's "Expected type: …, got: '…'" message shows the received value, not its type, so a
//! drop-in must print numbers, arrays and objects exactly as a JavaScript engine would.

use serde_json::Value;

/// `String(value)` for a value `JSON.parse` could have produced.
pub fn js_string(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value, true);
    out
}

/// `top` is false inside an array, where `null` prints as nothing (`String([null, 1])` is `",1"`).
fn write_value(out: &mut String, value: &Value, top: bool) {
    match value {
        Value::Null if top => out.push_str("null"),
        Value::Null => {}
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        // serde_json holds every JSON number as an i64, u64 or finite f64; JavaScript holds an f64.
        Value::Number(n) => out.push_str(&js_number(n.as_f64().unwrap_or(f64::NAN))),
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item, false);
            }
        }
        Value::Object(_) => out.push_str("[object Object]"),
    }
}

/// ECMAScript's Number::toString(10): the shortest digits that round-trip (of two equally near,
/// the even one, which is where Rust's own `{}` differs), with exponents outside 1e-7 < |x| < 1e21.
pub fn js_number(x: f64) -> String {
    ryu_js::Buffer::new().format(x).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn scalars_print_as_javascript_prints_them() {
        assert_eq!(js_string(&json!(123)), "123");
        assert_eq!(js_string(&json!(null)), "null");
        assert_eq!(js_string(&json!(true)), "true");
        assert_eq!(js_string(&json!("text")), "text");
        assert_eq!(js_string(&json!(1.0)), "1");
        assert_eq!(js_string(&json!(-0.5)), "-0.5");
    }

    #[test]
    fn arrays_join_their_items_and_objects_are_opaque() {
        assert_eq!(js_string(&json!([1, 2])), "1,2");
        assert_eq!(js_string(&json!([])), "");
        assert_eq!(js_string(&json!([null, 1, [2, [3]], {"a": 1}, "x"])), ",1,2,3,[object Object],x");
        assert_eq!(js_string(&json!({"a": 1})), "[object Object]");
    }

    #[test]
    fn numbers_switch_to_exponents_where_javascript_does() {
        let cases = [
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (123_456_789_012_345_680_000.0, "123456789012345680000"),
            (1.5e-7, "1.5e-7"),
            (1e-6, "0.000001"),
            (0.1 + 0.2, "0.30000000000000004"),
            (12_345_678_901_234_567_890.0, "12345678901234567000"),
            (-1.25e300, "-1.25e+300"),
            (5e-324, "5e-324"),
            // Exactly halfway between …528.2 and …528.3, both shortest: JavaScript takes the even.
            (2_248_196_060_682_528.0 + 0.25, "2248196060682528.2"),
            (-0.0, "0"),
        ];
        for (x, expected) in cases {
            assert_eq!(js_number(x), expected, "{x:e}");
        }
    }

    /// Node's own `String(n)` for every number, in one process: an oracle independent of this code.
    fn node_strings(numbers: &[f64]) -> Vec<String> {
        let input: Vec<String> = numbers.iter().map(|n| format!("{n:e}")).collect();
        let script =
            "const xs = JSON.parse(process.argv[1]); console.log(JSON.stringify(xs.map(x => String(Number(x)))))";
        let output = std::process::Command::new("node")
            .args(["-e", script, &serde_json::to_string(&input).unwrap()])
            .output()
            .expect("node runs (Node.js is on the machine; Medusa's tests need it too)");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(8))]
        #[test]
        fn numbers_print_as_node_prints_them(
            numbers in prop::collection::vec(
                prop_oneof![
                    any::<f64>().prop_filter("finite", |x| x.is_finite()),
                    any::<i64>().prop_map(|i| i as f64),
                    (-30i32..30, 1u32..100_000).prop_map(|(e, m)| f64::from(m) * 10f64.powi(e)),
                ],
                64,
            )
        ) {
            let ours: Vec<String> = numbers.iter().map(|&x| js_number(x)).collect();
            prop_assert_eq!(ours, node_strings(&numbers));
        }
    }
}
