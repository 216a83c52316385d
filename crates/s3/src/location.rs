//! Where a bucket is: `s3://BUCKET[/PREFIX]?endpoint=http://HOST:PORT&region=REGION`, and
//! the key pair from the environment.

use std::fmt;

/// A parsed `s3://` repository address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Location {
    /// The bucket's name.
    pub bucket: String,
    /// What every key is stored under: empty, or ending in `/`.
    pub prefix: String,
    /// `http` or `https`.
    pub scheme: String,
    /// The endpoint's `host[:port]` (without the bucket, even for virtual-hosted addressing).
    pub host: String,
    /// The region requests are signed for.
    pub region: String,
    /// True for `endpoint/bucket/key` (Garage, MinIO, Ceph); false for `bucket.endpoint/key`.
    pub path_style: bool,
}

impl S3Location {
    /// Parses `s3://BUCKET[/PREFIX][?endpoint=URL&region=R&addressing=path|virtual]`.
    ///
    /// Without `endpoint`, AWS S3 in `region` (default `us-east-1`) with virtual-hosted
    /// addressing; with one, path-style unless `addressing=virtual`.
    pub fn parse(url: &str) -> Result<S3Location, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| format!("'{url}' is not an s3:// address"))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
        if bucket.is_empty() {
            return Err(format!("'{url}' names no bucket (s3://BUCKET[/PREFIX])"));
        }
        let bucket_ok = bucket.len() >= 3
            && bucket.len() <= 63
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !bucket_ok {
            return Err(format!(
                "'{bucket}' is not a bucket name (3 to 63 lowercase letters, digits, '-' or '.')"
            ));
        }
        let prefix = prefix.trim_matches('/');
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        let (mut endpoint, mut region, mut addressing) = (None, None, None);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v).ok_or_else(|| format!("bad %-escape in '{pair}'"))?;
            match k {
                "endpoint" => endpoint = Some(v),
                "region" => region = Some(v),
                "addressing" => addressing = Some(v),
                other => {
                    return Err(format!(
                    "unknown parameter '{other}' in '{url}' (known: endpoint, region, addressing)"
                ))
                }
            }
        }
        let region = region.unwrap_or_else(|| "us-east-1".to_string());
        let (scheme, host, default_path_style) = match &endpoint {
            Some(e) => {
                let (scheme, host) = e
                    .split_once("://")
                    .filter(|(s, _)| *s == "http" || *s == "https")
                    .ok_or_else(|| format!("endpoint '{e}' is not an http:// or https:// URL"))?;
                let host = host.trim_end_matches('/');
                if host.is_empty() || host.contains('/') {
                    return Err(format!(
                        "endpoint '{e}' must be scheme://host[:port] with no path"
                    ));
                }
                (scheme.to_string(), host.to_string(), true)
            }
            None => (
                "https".to_string(),
                format!("s3.{region}.amazonaws.com"),
                false,
            ),
        };
        let path_style = match addressing.as_deref() {
            None => default_path_style,
            Some("path") => true,
            Some("virtual") => false,
            Some(other) => {
                return Err(format!(
                    "addressing '{other}' is neither 'path' nor 'virtual'"
                ))
            }
        };
        Ok(S3Location {
            bucket: bucket.to_string(),
            prefix,
            scheme,
            host,
            region,
            path_style,
        })
    }

    /// The host requests go to (the bucket's own for virtual-hosted addressing).
    pub(crate) fn request_host(&self) -> String {
        if self.path_style {
            self.host.clone()
        } else {
            format!("{}.{}", self.bucket, self.host)
        }
    }

    /// The raw path of `key` (under the prefix), or of the bucket for `None`.
    pub(crate) fn raw_path(&self, key: Option<&str>) -> String {
        let key = key.map(|k| format!("{}{k}", self.prefix));
        match (self.path_style, key) {
            (true, Some(k)) => format!("/{}/{k}", self.bucket),
            (true, None) => format!("/{}", self.bucket),
            (false, Some(k)) => format!("/{k}"),
            (false, None) => "/".to_string(),
        }
    }
}

impl fmt::Display for S3Location {
    /// The address without secrets (there are none in it) and with the endpoint.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "s3://{}/{}?endpoint={}://{}&region={}",
            self.bucket,
            self.prefix.trim_end_matches('/'),
            self.scheme,
            self.host,
            self.region
        )
    }
}

/// Decodes `%XX` escapes; `None` for a broken one or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The key pair, from `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
pub(crate) fn credentials_from_env() -> Result<(String, String), String> {
    let get = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("{name} is not set (an S3 repository takes its key pair from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"))
    };
    Ok((get("AWS_ACCESS_KEY_ID")?, get("AWS_SECRET_ACCESS_KEY")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_garage_style_addresses() {
        let l = S3Location::parse(
            "s3://emrest/node-a/repo?endpoint=http://127.0.0.1:3900&region=garage",
        )
        .unwrap();
        assert_eq!(l.bucket, "emrest");
        assert_eq!(l.prefix, "node-a/repo/");
        assert_eq!(
            (l.scheme.as_str(), l.host.as_str()),
            ("http", "127.0.0.1:3900")
        );
        assert_eq!(l.region, "garage");
        assert!(l.path_style);
        assert_eq!(l.raw_path(Some("config")), "/emrest/node-a/repo/config");
        assert_eq!(l.request_host(), "127.0.0.1:3900");
        let enc = S3Location::parse("s3://emrest?endpoint=http%3A%2F%2Flocalhost%3A9000").unwrap();
        assert_eq!(enc.host, "localhost:9000");
        assert_eq!(enc.prefix, "");
    }

    #[test]
    fn aws_defaults_to_virtual_hosted_addressing() {
        let l = S3Location::parse("s3://my-backups?region=eu-west-1").unwrap();
        assert_eq!(l.host, "s3.eu-west-1.amazonaws.com");
        assert!(!l.path_style);
        assert_eq!(l.request_host(), "my-backups.s3.eu-west-1.amazonaws.com");
        assert_eq!(l.raw_path(Some("packs/ab/x.pack")), "/packs/ab/x.pack");
    }

    #[test]
    fn refuses_what_it_cannot_use_and_says_why() {
        for (url, says) in [
            ("file:///x", "not an s3://"),
            ("s3://?endpoint=http://h", "names no bucket"),
            ("s3://Bad_Bucket", "not a bucket name"),
            ("s3://bucket?endpoint=ftp://h", "not an http://"),
            ("s3://bucket?endpoint=http://h/path", "no path"),
            ("s3://bucket?secret=x", "unknown parameter 'secret'"),
            ("s3://bucket?addressing=dns", "neither 'path' nor 'virtual'"),
            ("s3://bucket?region=%zz", "bad %-escape"),
        ] {
            let err = S3Location::parse(url).unwrap_err();
            assert!(err.contains(says), "{url}: {err}");
        }
    }
}
