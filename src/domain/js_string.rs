//! JavaScript's `String(value)` of a JSON value: how Medusa 2.21 (zod 4) prints what it received.
//!
//! Medusa's "Expected type: …, got: '…'" message shows the received value, not its type, so a
//! drop-in must print numbers, arrays and objects exactly as a JavaScript engine would.

use std::fmt::Write as _;

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

/// ECMAScript's Number::toString(10): the shortest digits that round-trip, positioned by the
/// decimal exponent, with exponential notation outside 1e-7 < |x| < 1e21.
pub fn js_number(x: f64) -> String {
    if x.is_nan() {
        return "NaN".to_owned();
    }
    if x == 0.0 {
        return "0".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    let sign = if x < 0.0 { "-" } else { "" };
    // Rust's `{:e}` prints the same shortest round-trip digits: `d[.ddd]e<exp>`.
    let scientific = format!("{:e}", x.abs());
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let k = i64::try_from(digits.len()).unwrap_or(i64::MAX);
    let n = exponent.parse::<i64>().unwrap_or(0) + 1;
    let mut out = String::from(sign);
    if k <= n && n <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', usize::try_from(n - k).unwrap_or(0)));
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(usize::try_from(n).unwrap_or(0));
        let _ = write!(out, "{int}.{frac}");
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', usize::try_from(-n).unwrap_or(0)));
        out.push_str(&digits);
    } else {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let e = n - 1;
        let _ = write!(out, "e{}{}", if e < 0 { '-' } else { '+' }, e.abs());
    }
    out
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
