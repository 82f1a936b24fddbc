//! ClickHouse over its HTTP interface: one statement per request, results
//! read as `JSONCompact`, and the one way values are written into SQL
//! text ([`quote`]). No query parameters: the servers we support (18.16,
//! Debian's) have none, so every value goes through `quote`.

use std::time::Duration;

use serde_json::Value;
use tagwatch_store::StoreError;

/// How long one statement may take, connecting included. A group commit
/// (at most 256 batches) is one INSERT; a dashboard query over a site's
/// 30 days is well under a second at the sizes we measured.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an INSERT on a cluster waits for its shards: less than
/// [`STATEMENT_TIMEOUT`], so that the server's own error says which shard
/// did not answer.
const DISTRIBUTED_INSERT_TIMEOUT: Duration = Duration::from_secs(20);
/// Largest answer read (a `/api/findings` page of 10,000 rows is a few MB).
const MAX_ANSWER: u64 = 256 * 1024 * 1024;
/// Most bytes of a ClickHouse error kept in messages.
const MAX_ERROR: usize = 400;

/// Where the events go: `clickhouse://[USER[:PASSWORD]@]HOST:PORT/DATABASE[?cluster=NAME]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `http://HOST:PORT/`
    pub base: String,
    pub database: String,
    pub user: Option<String>,
    pub password: Option<String>,
    /// A `remote_servers` cluster: local tables on this server and a
    /// `Distributed` table over the cluster (docs/scale.md).
    pub cluster: Option<String>,
}

/// A name ClickHouse takes unquoted: a database or cluster.
fn plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

impl Target {
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let bad = |why: &str| {
            StoreError::BadUrl(format!(
                "--events {:?}: {why}; use clickhouse://HOST:PORT/DATABASE (e.g. clickhouse://127.0.0.1:8123/tagwatch)",
                tagwatch_store::redact_url(url)
            ))
        };
        let rest = url
            .trim()
            .strip_prefix("clickhouse://")
            .ok_or_else(|| bad("not a clickhouse:// URL"))?;
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (authority, database) = rest.split_once('/').ok_or_else(|| bad("no database"))?;
        let database = database.trim_end_matches('/');
        if !plain_name(database) {
            return Err(bad("the database must be letters, digits and _"));
        }
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        if host.is_empty() || host.contains(['/', ' ', '\\']) {
            return Err(bad("no host"));
        }
        let decode = |s: &str| {
            percent_decode(s).ok_or_else(|| {
                bad("the user or password is not percent-encoded UTF-8 (e.g. @ as %40, / as %2F)")
            })
        };
        let (user, password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((u, p)) => (Some(decode(u)?), Some(decode(p)?)),
                None => (Some(decode(u)?), None),
            },
            None => (None, None),
        };
        let mut cluster = None;
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("cluster", name)) if plain_name(name) => cluster = Some(name.to_owned()),
                _ => return Err(bad(&format!("unknown option {pair:?} (only cluster=NAME)"))),
            }
        }
        let host = if host.contains(':') {
            host.to_owned()
        } else {
            format!("{host}:8123")
        };
        Ok(Self {
            base: format!("http://{host}/"),
            database: database.to_owned(),
            user,
            password,
            cluster,
        })
    }
}

/// `s` with its `%XX` escapes decoded (a URL's user and password, where
/// `@ : / ? #` must be escaped); `None` for a bad escape or non-UTF-8.
/// Not the `percent-encoding` crate: it passes a bad escape (`%zz`, `%4`)
/// through as text, and a mistyped password should be refused at start
/// with a message, not sent to the server as something else.
fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

/// A ClickHouse server: statements over HTTP, keep-alive.
pub struct Client {
    agent: ureq::Agent,
    target: Target,
    /// `?database=…&settings`: the query string of every request.
    query: String,
}

fn unreachable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Events {
        message: format!("cannot reach the server: {e}"),
        unreachable: true,
    }
}

impl Client {
    pub fn new(target: Target) -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(STATEMENT_TIMEOUT))
            .http_status_as_error(false)
            .build();
        // Integers as JSON numbers (our Int64 fit). On a cluster, an
        // INSERT into a `Distributed` table answers once every shard has
        // written its rows (not once they are queued on this server's
        // disk), so that what is acknowledged and chained is readable on
        // its shard: a shard down refuses the insert (docs/scale.md).
        let mut query = format!(
            "?database={}&output_format_json_quote_64bit_integers=0",
            target.database
        );
        if target.cluster.is_some() {
            query.push_str(&format!(
                "&insert_distributed_sync=1&insert_distributed_timeout={}",
                DISTRIBUTED_INSERT_TIMEOUT.as_secs()
            ));
        }
        Self {
            agent: ureq::Agent::new_with_config(config),
            target,
            query,
        }
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Runs one statement (its text in the request body) and answers the
    /// body of the answer. A refused statement is `StoreError::Events`
    /// with the server's message; no answer at all is `unreachable`.
    pub fn run(&self, sql: &str) -> Result<String, StoreError> {
        self.run_in(sql, true)
    }

    /// As [`Client::run`]; `in_database: false` for statements before the
    /// database exists.
    fn run_in(&self, sql: &str, in_database: bool) -> Result<String, StoreError> {
        let url = if in_database {
            format!("{}{}", self.target.base, self.query)
        } else {
            self.target.base.clone()
        };
        let mut request = self.agent.post(&url);
        if let Some(user) = &self.target.user {
            request = request.header("X-ClickHouse-User", user);
        }
        if let Some(key) = &self.target.password {
            request = request.header("X-ClickHouse-Key", key);
        }
        let mut response = request.send(sql.as_bytes()).map_err(unreachable)?;
        let status = response.status();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_string()
            .map_err(unreachable)?;
        if status.is_success() {
            return Ok(body);
        }
        let mut message = body.trim().to_owned();
        if message.len() > MAX_ERROR {
            let mut cut = MAX_ERROR;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        Err(StoreError::Events {
            unreachable: false,
            message: format!("HTTP {}: {message}", status.as_u16()),
        })
    }

    /// Creates the database (`CREATE DATABASE IF NOT EXISTS`).
    pub fn create_database(&self) -> Result<(), StoreError> {
        self.run_in(
            &format!("CREATE DATABASE IF NOT EXISTS {}", self.target.database),
            false,
        )
        .map(drop)
    }

    /// The rows of each query, the queries sent at once (one connection
    /// and one thread each): an API call waits for its slowest query, not
    /// for the sum of them. The first error, if any.
    pub fn rows_at_once(&self, sqls: &[String]) -> Result<Vec<Vec<Vec<Value>>>, StoreError> {
        at_once(sqls, |sql| self.rows(sql))
    }

    /// The rows of a query, each a list of JSON values (`JSONCompact`).
    pub fn rows(&self, sql: &str) -> Result<Vec<Vec<Value>>, StoreError> {
        let body = self.run(&format!("{sql}\nFORMAT JSONCompact"))?;
        let bad = |why: String| StoreError::Events {
            message: format!("unreadable answer: {why}"),
            unreachable: false,
        };
        let mut answer: Value = serde_json::from_str(&body).map_err(|e| bad(e.to_string()))?;
        match answer.get_mut("data").map(Value::take) {
            Some(Value::Array(rows)) => rows
                .into_iter()
                .map(|row| match row {
                    Value::Array(cells) => Ok(cells),
                    other => Err(bad(format!("a row is not a list: {other}"))),
                })
                .collect(),
            _ => Err(bad("no data".into())),
        }
    }
}

/// `f` of each item, all at once (a scoped thread each), in order.
pub fn at_once<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> Result<R, StoreError> + Sync,
) -> Result<Vec<R>, StoreError> {
    if let [one] = items {
        return Ok(vec![f(one)?]);
    }
    std::thread::scope(|scope| {
        let running: Vec<_> = items.iter().map(|item| scope.spawn(|| f(item))).collect();
        running
            .into_iter()
            .map(|r| {
                r.join().unwrap_or_else(|_| {
                    Err(StoreError::Events {
                        message: "a ClickHouse request thread panicked".into(),
                        unreachable: false,
                    })
                })
            })
            .collect()
    })
}

/// `s` as a ClickHouse string literal. ClickHouse reads backslash escapes
/// in literals (unlike standard SQL, where only `''` is special), so a
/// backslash and a quote are both escaped; NUL and the line and tab
/// characters are written as escapes so that statements stay one line of
/// text per row. Every other character is itself (UTF-8 bytes).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// `items` as an `Array(String)` literal.
pub fn quote_array(items: &[String]) -> String {
    let mut out = String::from("[");
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&quote(s));
    }
    out.push(']');
    out
}

/// A text cell (`JSONCompact`).
pub fn text(v: &Value) -> Result<String, StoreError> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| StoreError::Events {
            message: format!("expected text, got {v}"),
            unreachable: false,
        })
}

/// A nullable text cell.
pub fn opt_text(v: &Value) -> Result<Option<String>, StoreError> {
    match v {
        Value::Null => Ok(None),
        v => text(v).map(Some),
    }
}

/// An integer cell (`Int64`/`UInt64` as numbers, see `Client::new`).
pub fn int(v: &Value) -> Result<i64, StoreError> {
    v.as_i64()
        .or_else(|| v.as_u64().map(|n| i64::try_from(n).unwrap_or(i64::MAX)))
        .ok_or_else(|| StoreError::Events {
            message: format!("expected an integer, got {v}"),
            unreachable: false,
        })
}

/// A sum computed as `sum(x), sum(toFloat64(x))`: the integer sum unless
/// the float one says it went past `i64::MAX` (ClickHouse's integer sums
/// wrap; the SQL stores saturate, and so does this).
pub fn saturated(sum: &Value, approx: &Value) -> Result<i64, StoreError> {
    let approx = approx.as_f64().unwrap_or(0.0);
    // i64::MAX as f64 is 2^63; a wrapped sum is at least that far off.
    if approx >= 9.2e18 {
        return Ok(i64::MAX);
    }
    int(sum)
}

/// A list-of-text cell.
pub fn texts(v: &Value) -> Result<Vec<String>, StoreError> {
    match v {
        Value::Array(items) => items.iter().map(text).collect(),
        other => Err(StoreError::Events {
            message: format!("expected a list, got {other}"),
            unreachable: false,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_what_clickhouse_unescapes() {
        assert_eq!(quote("a'b"), r"'a\'b'");
        assert_eq!(quote(r"a\'"), r"'a\\\''");
        assert_eq!(quote("x\0y\n\t\r"), r"'x\0y\n\t\r'");
        assert_eq!(quote("é😀"), "'é😀'");
        assert_eq!(quote_array(&["a".into(), "'".into()]), r"['a','\'']");
    }

    #[test]
    fn parses_urls() {
        let t = Target::parse("clickhouse://u:p@db.internal:9000/tw?cluster=c1").unwrap();
        assert_eq!(t.base, "http://db.internal:9000/");
        assert_eq!(t.database, "tw");
        assert_eq!(t.user.as_deref(), Some("u"));
        assert_eq!(t.password.as_deref(), Some("p"));
        assert_eq!(t.cluster.as_deref(), Some("c1"));
        let t = Target::parse("clickhouse://us%65r:p%40ss%3Aw%2Frd%3F%23%25@h:1/tw").unwrap();
        assert_eq!(t.user.as_deref(), Some("user"));
        assert_eq!(t.password.as_deref(), Some("p@ss:w/rd?#%"));
        assert_eq!(
            Target::parse("clickhouse://h/tw").unwrap().base,
            "http://h:8123/"
        );
        for bad in [
            "http://h:1/tw",
            "clickhouse://h:1",
            "clickhouse://h:1/t w",
            "clickhouse://h:1/tw;DROP",
            "clickhouse://h:1/tw?x=1",
            "clickhouse:///tw",
            "clickhouse://u:%zz@h:1/tw",
            "clickhouse://u:%4@h:1/tw",
            "clickhouse://u:%+f@h:1/tw",
            "clickhouse://u:%ff@h:1/tw",
        ] {
            assert!(
                matches!(Target::parse(bad), Err(StoreError::BadUrl(_))),
                "{bad}"
            );
        }
        let Err(StoreError::BadUrl(m)) = Target::parse("clickhouse://u:secret@h/") else {
            panic!()
        };
        assert!(!m.contains("secret"), "{m}");
    }

    #[test]
    fn sums_saturate() {
        use serde_json::json;
        assert_eq!(saturated(&json!(5), &json!(5.0)).unwrap(), 5);
        assert_eq!(
            saturated(&json!(-9223372036854775807i64), &json!(1.8e19)).unwrap(),
            i64::MAX
        );
    }
}
