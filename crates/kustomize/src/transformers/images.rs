//! `images`: rewrite container image names, tags and digests.

use regex::Regex;
use serde_json::Value;

use crate::error::Result;
use crate::fieldspec::{self, CreateKind, FieldSpec, untagged_scalar};
use crate::kustomization::Image;
use crate::resmap::ResMap;
use crate::resource::scalar_text;

/// Splits `name[:tag][@digest]` like kustomize's `image.Split`.
pub fn split(image: &str) -> (String, String, String) {
    let slash = image.find('/').filter(|&i| i > 0).unwrap_or(0);
    let search = &image[slash..];
    let id = search.find('@');
    let ic = search.find(':');
    match (ic, id) {
        (None, None) => (image.to_string(), String::new(), String::new()),
        (ic, Some(d)) if ic.is_none_or(|c| d < c) => {
            let d = d + slash;
            (
                image[..d].to_string(),
                String::new(),
                image[d + 1..].to_string(),
            )
        }
        (Some(c), Some(d)) => {
            let (c, d) = (c + slash, d + slash);
            (
                image[..c].to_string(),
                image[c + 1..d].to_string(),
                image[d + 1..].to_string(),
            )
        }
        (Some(c), None) => {
            let c = c + slash;
            (
                image[..c].to_string(),
                image[c + 1..].to_string(),
                String::new(),
            )
        }
        (None, Some(_)) => (image.to_string(), String::new(), String::new()),
    }
}

/// kustomize matches with the image name used as a regular expression.
fn matcher(name: &str) -> Option<Regex> {
    Regex::new(&format!(
        "^{name}(:[a-zA-Z0-9_.{{}}-]*)?(@sha256:[a-zA-Z0-9_.{{}}-]*)?$"
    ))
    .ok()
}

fn updated(value: &str, img: &Image, re: &Regex) -> Option<String> {
    if !re.is_match(value) {
        return None;
    }
    let (mut name, mut tag, mut digest) = split(value);
    if !img.new_name.is_empty() {
        name = img.new_name.clone();
    }
    if !img.new_tag.is_empty() && !img.digest.is_empty() {
        tag = img.new_tag.clone();
        digest = img.digest.clone();
    } else if !img.new_tag.is_empty() {
        tag = img.new_tag.clone();
        digest.clear();
    } else if !img.digest.is_empty() {
        tag.clear();
        digest = img.digest.clone();
    } else if !img.tag_suffix.is_empty() {
        tag.push_str(&img.tag_suffix);
        digest.clear();
    }
    if !tag.is_empty() {
        name = format!("{name}:{tag}");
    }
    if !digest.is_empty() {
        name = format!("{name}@{digest}");
    }
    Some(name)
}

fn update_node(node: &mut Value, img: &Image, re: &Regex) {
    if let Some(v) = updated(&scalar_text(node), img, re) {
        *node = untagged_scalar(&v);
    }
}

/// kustomize's legacy pass: every `containers`/`initContainers` list
/// anywhere in the object.
fn walk_containers(node: &mut Value, img: &Image, re: &Regex, depth: usize) {
    if depth > 256 {
        return;
    }
    match node {
        Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                walk_containers(v, img, re, depth + 1);
                if (k == "containers" || k == "initContainers")
                    && let Value::Array(items) = v
                {
                    for item in items.iter_mut() {
                        if let Some(image) = item.as_object_mut().and_then(|c| c.get_mut("image"))
                            && !image.is_object()
                            && !image.is_array()
                        {
                            update_node(image, img, re);
                        }
                    }
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                walk_containers(item, img, re, depth + 1);
            }
        }
        _ => {}
    }
}

/// Applies one `images` entry to the containers of every resource and to the fields `specs` name.
pub fn transform(m: &mut ResMap, img: &Image, specs: &[FieldSpec]) -> Result<()> {
    let Some(re) = matcher(&img.name) else {
        return Ok(());
    };
    for res in m.resources_mut() {
        if res.kind() == "CustomResourceDefinition" {
            continue;
        }
        let mut root = Value::Object(std::mem::take(res.as_map_mut()));
        walk_containers(&mut root, img, &re, 0);
        if let Value::Object(obj) = root {
            *res.as_map_mut() = obj;
        }
    }
    for res in m.resources_mut() {
        if res.kind() == "CustomResourceDefinition" {
            continue;
        }
        for fs in specs {
            fieldspec::apply(
                res.as_map_mut(),
                fs,
                CreateKind::Nothing,
                &mut |node| match node {
                    Value::Object(_) | Value::Array(_) => Err(crate::error::Error::transformer(
                        "wrong node kind: expected ScalarNode",
                    )),
                    _ => {
                        update_node(node, img, &re);
                        Ok(())
                    }
                },
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_images() {
        assert_eq!(split("nginx"), ("nginx".into(), "".into(), "".into()));
        assert_eq!(
            split("nginx:1.2"),
            ("nginx".into(), "1.2".into(), "".into())
        );
        assert_eq!(
            split("reg:5000/nginx:1.2"),
            ("reg:5000/nginx".into(), "1.2".into(), "".into())
        );
        assert_eq!(
            split("nginx@sha256:abc"),
            ("nginx".into(), "".into(), "sha256:abc".into())
        );
        assert_eq!(
            split("nginx:1@sha256:abc"),
            ("nginx".into(), "1".into(), "sha256:abc".into())
        );
    }

    #[test]
    fn updates() {
        let img = Image {
            name: "nginx".into(),
            new_tag: "2".into(),
            ..Image::default()
        };
        let re = matcher(&img.name).unwrap();
        assert_eq!(updated("nginx:1", &img, &re).as_deref(), Some("nginx:2"));
        assert_eq!(updated("nginx-x:1", &img, &re), None);
    }
}
