//! The few XML answers of S3 emrest reads: listings, multipart uploads and errors.

use quick_xml::events::Event;
use quick_xml::Reader;

/// The text of every element named in `names`, in document order, as (name, text).
/// Elements with no text give an empty string.
pub(crate) fn texts(xml: &[u8], names: &[&str]) -> Result<Vec<(String, String)>, String> {
    let mut reader = Reader::from_reader(xml);
    reader.config_mut().trim_text(true);
    let mut out = Vec::new();
    let mut open: Option<String> = None;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if names.contains(&name.as_str()) {
                    out.push((name.clone(), String::new()));
                    open = Some(name);
                } else {
                    open = None;
                }
            }
            Ok(Event::Text(t)) => {
                if let (Some(_), Some(last)) = (&open, out.last_mut()) {
                    let text = t.unescape().map_err(|e| format!("bad XML text: {e}"))?;
                    last.1.push_str(&text);
                }
            }
            Ok(Event::End(_)) => open = None,
            Ok(Event::Eof) => return Ok(out),
            Ok(_) => {}
            Err(e) => return Err(format!("bad XML at byte {}: {e}", reader.buffer_position())),
        }
    }
}

/// One page of a `ListObjectsV2` answer.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ListPage {
    /// Keys with their sizes.
    pub(crate) objects: Vec<(String, u64)>,
    /// Where the next page starts, when there is one.
    pub(crate) next: Option<String>,
}

pub(crate) fn list_page(xml: &[u8]) -> Result<ListPage, String> {
    let mut page = ListPage::default();
    let mut truncated = false;
    let mut key: Option<String> = None;
    for (name, text) in texts(
        xml,
        &["Key", "Size", "IsTruncated", "NextContinuationToken"],
    )? {
        match name.as_str() {
            "Key" => key = Some(text),
            "Size" => {
                let k = key.take().ok_or("a Size without its Key")?;
                let size = text
                    .parse()
                    .map_err(|_| format!("Size '{text}' is not a number"))?;
                page.objects.push((k, size));
            }
            "IsTruncated" => truncated = text == "true",
            _ => page.next = Some(text),
        }
    }
    if !truncated {
        page.next = None;
    } else if page.next.is_none() {
        return Err("a truncated listing without NextContinuationToken".to_string());
    }
    Ok(page)
}

/// `Code: Message` of an S3 error answer, when it is one.
pub(crate) fn error(xml: &[u8]) -> Option<String> {
    let found = texts(xml, &["Code", "Message"]).ok()?;
    let code = found.iter().find(|(n, _)| n == "Code")?.1.clone();
    Some(match found.iter().find(|(n, _)| n == "Message") {
        Some((_, m)) if !m.is_empty() => format!("{code}: {m}"),
        _ => code,
    })
}

/// The `UploadId` of a `CreateMultipartUpload` answer.
pub(crate) fn upload_id(xml: &[u8]) -> Result<String, String> {
    texts(xml, &["UploadId"])?
        .pop()
        .map(|(_, id)| id)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| "the answer names no UploadId".to_string())
}

/// The body of `CompleteMultipartUpload` for the parts' ETags, in order.
pub(crate) fn complete_body(etags: &[String]) -> String {
    let mut xml = String::from("<CompleteMultipartUpload>");
    for (i, etag) in etags.iter().enumerate() {
        let etag = etag.replace('&', "&amp;").replace('<', "&lt;");
        xml.push_str(&format!(
            "<Part><PartNumber>{}</PartNumber><ETag>{etag}</ETag></Part>",
            i + 1
        ));
    }
    xml.push_str("</CompleteMultipartUpload>");
    xml
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_truncated_listing_page() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>b</Name><Prefix>p/packs/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>
  <IsTruncated>true</IsTruncated>
  <Contents><Key>p/packs/ab/1.pack</Key><LastModified>2026-12-08T04:00:00.000Z</LastModified><ETag>"x"</ETag><Size>123</Size></Contents>
  <Contents><Key>p/packs/a&amp;b.pack</Key><Size>0</Size></Contents>
  <NextContinuationToken>tok/1=</NextContinuationToken>
</ListBucketResult>"#;
        let page = list_page(xml).unwrap();
        assert_eq!(
            page.objects,
            vec![
                ("p/packs/ab/1.pack".to_string(), 123),
                ("p/packs/a&b.pack".to_string(), 0)
            ]
        );
        assert_eq!(page.next.as_deref(), Some("tok/1="));
        let last = br#"<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>"#;
        assert_eq!(list_page(last).unwrap(), ListPage::default());
        assert!(
            list_page(b"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>")
                .is_err()
        );
    }

    #[test]
    fn reads_errors_and_upload_ids() {
        let e = b"<Error><Code>NoSuchKey</Code><Message>Key not found</Message></Error>";
        assert_eq!(error(e).as_deref(), Some("NoSuchKey: Key not found"));
        assert_eq!(error(b"not xml at all"), None);
        let u = b"<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>u-1</UploadId></InitiateMultipartUploadResult>";
        assert_eq!(upload_id(u).unwrap(), "u-1");
        assert!(upload_id(b"<X/>").is_err());
        assert_eq!(
            complete_body(&["\"a\"".into(), "\"b\"".into()]),
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"a\"</ETag></Part>\
             <Part><PartNumber>2</PartNumber><ETag>\"b\"</ETag></Part></CompleteMultipartUpload>"
        );
    }
}
