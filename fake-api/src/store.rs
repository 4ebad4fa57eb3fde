//! Objects kept by collection path (`/api/v1/namespaces/ns-0/secrets`), served the way
//! kube-apiserver serves them: discovery of their API groups (`/apis`), GET of an object or of a list (equality label selectors, `limit`
//! and `continue`), an idle watch, POST, PUT (conditional on a sent resourceVersion), PATCH with a
//! JSON Patch or a merge patch; failures as `Status` objects with kube-apiserver's codes and
//! wording. What it does not model: authentication, admission, field managers, strategic-merge
//! patches (answered 415, so a client that relies on them shows up), DELETE, and most validation,
//! which a test adds per collection where it matters (`FakeApi::validate`).
use std::{collections::BTreeMap, fmt, sync::Arc};

use http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::{Answer, Reply, Request};

/// A collection's own validation of an object written to it (the new object, and the one it
/// replaces): an `Err` is answered 422 `Invalid` with that message.
pub(crate) type Validator = Arc<dyn Fn(&Value, Option<&Value>) -> Result<(), String> + Send + Sync>;

/// The objects of every collection the fake serves.
#[derive(Default)]
pub(crate) struct Store {
    collections: BTreeMap<String, Vec<Value>>,
    validators: BTreeMap<String, Validator>,
    resource_version: u64,
}

// === impl Store ===

impl Store {
    pub(crate) fn set(&mut self, collection: &str, objects: Vec<Value>) {
        self.collections.insert(collection.to_owned(), objects);
    }

    pub(crate) fn validate(&mut self, collection: &str, validator: Validator) {
        self.validators.insert(collection.to_owned(), validator);
    }

    pub(crate) fn objects(&self, collection: &str) -> Vec<Value> {
        self.collections
            .get(collection)
            .cloned()
            .unwrap_or_default()
    }

    pub(crate) fn object(&self, path: &str) -> Option<Value> {
        let (collection, name) = path.rsplit_once('/')?;
        let objects = self.collections.get(collection)?;
        objects.iter().find(|o| name_of(o) == name).cloned()
    }

    /// Adds `object` as if it had been created earlier, replacing one of its name.
    pub(crate) fn seed(&mut self, collection: &str, mut object: Value) {
        let old = self.object(&format!("{collection}/{}", name_of(&object)));
        self.stamp(&mut object, old.as_ref());
        self.put(collection, object);
    }

    /// The answer to `request` if it is for a collection here or one of its objects.
    pub(crate) fn serve(&mut self, request: &Request) -> Option<Reply> {
        let path = request.path.as_str();
        if path == "/apis" && request.method == Method::GET {
            return Some(self.groups().into());
        }
        if self.collections.contains_key(path) {
            return Some(match request.method {
                Method::GET if request.is_watch() => Reply::held(),
                Method::GET => self.list(request).into(),
                Method::POST => self.create(path, &request.body).into(),
                _ => not_allowed().into(),
            });
        }
        let (collection, name) = path.rsplit_once('/')?;
        self.collections.get(collection)?;
        Some(
            match request.method {
                Method::GET => match self.object(path) {
                    Some(object) => Answer::ok(&object),
                    None => not_found(collection, name),
                },
                Method::PUT => self.replace(collection, name, &request.body),
                Method::PATCH => self.patch(collection, name, request),
                _ => not_allowed(),
            }
            .into(),
        )
    }

    fn list(&self, request: &Request) -> Answer {
        let selector = request.param("labelSelector").unwrap_or_default();
        let items: Vec<String> = self
            .objects(&request.path)
            .iter()
            .filter(|object| selects(&selector, object))
            .map(Value::to_string)
            .collect();
        let (range, next) = request.page(items.len());
        Answer::list("v1", "List", items.get(range).unwrap_or_default(), &next)
    }

    /// Discovery: an `APIGroupList` of the groups of the collections here, each at the versions
    /// their paths name.
    fn groups(&self) -> Answer {
        let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for path in self.collections.keys() {
            let mut segments = path.strip_prefix("/apis/").unwrap_or_default().split('/');
            if let (Some(group), Some(version)) = (segments.next(), segments.next()) {
                let versions = groups.entry(group).or_default();
                if !versions.contains(&version) {
                    versions.push(version);
                }
            }
        }
        let groups: Vec<Value> = groups
            .into_iter()
            .map(|(name, versions)| {
                let versions: Vec<Value> = versions
                    .into_iter()
                    .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
                    .collect();
                let preferred = versions.first().cloned().unwrap_or_default();
                json!({"name": name, "versions": versions, "preferredVersion": preferred})
            })
            .collect();
        Answer::ok(&json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
    }

    fn create(&mut self, collection: &str, body: &[u8]) -> Answer {
        let mut object = match self.valid(collection, body, None) {
            Ok(object) => object,
            Err(answer) => return answer,
        };
        let name = name_of(&object).to_owned();
        if self.object(&format!("{collection}/{name}")).is_some() {
            let message = format!("{} \"{name}\" already exists", resource(collection));
            return Answer::failure(StatusCode::CONFLICT, "AlreadyExists", &message);
        }
        if let (Some(namespace), Some(metadata)) = (namespace(collection), metadata(&mut object)) {
            metadata.insert("namespace".into(), namespace.into());
        }
        self.stamp(&mut object, None);
        self.put(collection, object.clone());
        Answer::json(StatusCode::CREATED, object.to_string())
    }

    fn replace(&mut self, collection: &str, name: &str, body: &[u8]) -> Answer {
        let Some(old) = self.object(&format!("{collection}/{name}")) else {
            return not_found(collection, name);
        };
        let mut object = match self.valid(collection, body, Some(&old)) {
            Ok(object) => object,
            Err(answer) => return answer,
        };
        // An update that carries a resourceVersion is conditional on it (optimistic concurrency).
        let sent = object.pointer("/metadata/resourceVersion");
        if sent.is_some() && sent != old.pointer("/metadata/resourceVersion") {
            let message = "the object has been modified; please apply your changes to the latest version and try again";
            return Answer::status(StatusCode::CONFLICT, message);
        }
        self.stamp(&mut object, Some(&old));
        self.put(collection, object.clone());
        Answer::ok(&object)
    }

    fn patch(&mut self, collection: &str, name: &str, request: &Request) -> Answer {
        let Some(old) = self.object(&format!("{collection}/{name}")) else {
            return not_found(collection, name);
        };
        let mut new = old.clone();
        let applied = match request.content_type() {
            "application/json-patch+json" => {
                serde_json::from_slice::<json_patch::Patch>(&request.body)
                    .map_err(|error| error.to_string())
                    .and_then(|patch| {
                        json_patch::patch(&mut new, &patch).map_err(|e| e.to_string())
                    })
            }
            "application/merge-patch+json" => serde_json::from_slice::<Value>(&request.body)
                .map(|patch| json_patch::merge(&mut new, &patch))
                .map_err(|error| error.to_string()),
            other => {
                let message = format!("the fake serves json and merge patches, not {other:?}");
                return Answer::status(StatusCode::UNSUPPORTED_MEDIA_TYPE, &message);
            }
        };
        // 422 is what kube-apiserver answers for a JSON Patch that does not apply (a failed `test`).
        if let Err(error) = applied {
            return Answer::status(StatusCode::UNPROCESSABLE_ENTITY, &error);
        }
        let valid = self.valid(collection, new.to_string().as_bytes(), Some(&old));
        let mut new = match valid {
            Ok(new) if name_of(&new) == name => new,
            Ok(_) => return invalid("metadata.name: field is immutable"),
            Err(answer) => return answer,
        };
        self.stamp(&mut new, Some(&old));
        self.put(collection, new.clone());
        Answer::ok(&new)
    }

    /// The body as an object this collection accepts, or the answer refusing it.
    fn valid(&self, collection: &str, body: &[u8], old: Option<&Value>) -> Result<Value, Answer> {
        let Ok(object) = serde_json::from_slice::<Value>(body) else {
            return Err(Answer::status(
                StatusCode::BAD_REQUEST,
                "the body is not JSON",
            ));
        };
        if name_of(&object).is_empty() {
            return Err(invalid("metadata.name: Required value: name is required"));
        }
        match self.validators.get(collection) {
            Some(validator) => validator(&object, old)
                .map(|()| object)
                .map_err(|m| invalid(&m)),
            None => Ok(object),
        }
    }

    /// Stores `object`, in place of the one of its name if there is one.
    fn put(&mut self, collection: &str, object: Value) {
        let objects = self.collections.entry(collection.to_owned()).or_default();
        match objects.iter_mut().find(|o| name_of(o) == name_of(&object)) {
            Some(slot) => *slot = object,
            None => objects.push(object),
        }
    }

    /// Sets the server-owned metadata: a new resourceVersion; uid and creation time kept from
    /// the object replaced.
    fn stamp(&mut self, object: &mut Value, old: Option<&Value>) {
        self.resource_version += 1;
        let version = self.resource_version;
        let kept =
            |field: &str| old.and_then(|old| old.pointer(&format!("/metadata/{field}")).cloned());
        let uid = kept("uid").unwrap_or_else(|| format!("uid-{version}").into());
        let created = kept("creationTimestamp").unwrap_or_else(|| "2025-01-01T00:00:00Z".into());
        if let Some(metadata) = metadata(object) {
            metadata.insert("resourceVersion".into(), version.to_string().into());
            metadata.insert("uid".into(), uid);
            metadata.insert("creationTimestamp".into(), created);
        }
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("collections", &self.collections)
            .field("validated", &self.validators.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn name_of(object: &Value) -> &str {
    object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn metadata(object: &mut Value) -> Option<&mut Map<String, Value>> {
    object.get_mut("metadata")?.as_object_mut()
}

/// The namespace of a namespaced collection's path (`…/namespaces/<ns>/<resource>`).
fn namespace(collection: &str) -> Option<&str> {
    let rest = collection.split_once("/namespaces/")?.1;
    rest.split_once('/').map(|(namespace, _)| namespace)
}

/// The resource as kube-apiserver names it in messages: `secrets`,
/// `mutatingwebhookconfigurations.admissionregistration.k8s.io`.
fn resource(collection: &str) -> String {
    let plural = collection.rsplit('/').next().unwrap_or_default();
    match collection
        .strip_prefix("/apis/")
        .and_then(|rest| rest.split('/').next())
    {
        Some(group) => format!("{plural}.{group}"),
        None => plural.to_owned(),
    }
}

/// An equality selector (`a=b,c==d,e!=f`, `g` for "has the label") against the object's labels.
fn selects(selector: &str, object: &Value) -> bool {
    let labels = &object["metadata"]["labels"];
    selector
        .split(',')
        .filter(|term| !term.is_empty())
        .all(|term| {
            if let Some((key, value)) = term.split_once("!=") {
                return labels[key] != value;
            }
            match term.split_once('=') {
                Some((key, value)) => labels[key] == value.trim_start_matches('='),
                None => !labels[term].is_null(),
            }
        })
}

fn not_found(collection: &str, name: &str) -> Answer {
    let message = format!("{} \"{name}\" not found", resource(collection));
    Answer::status(StatusCode::NOT_FOUND, &message)
}

fn not_allowed() -> Answer {
    let message = "the server does not allow this method on the requested resource";
    Answer::status(StatusCode::METHOD_NOT_ALLOWED, message)
}

fn invalid(message: &str) -> Answer {
    Answer::status(StatusCode::UNPROCESSABLE_ENTITY, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_are_named_as_kube_apiserver_names_them() {
        assert_eq!(resource("/api/v1/namespaces/ns-0/secrets"), "secrets");
        let configs = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations";
        let named = "mutatingwebhookconfigurations.admissionregistration.k8s.io";
        assert_eq!(resource(configs), named);
        assert_eq!(namespace("/api/v1/namespaces/ns-0/secrets"), Some("ns-0"));
        assert_eq!(namespace(configs), None);
    }

    #[test]
    fn label_selectors_select_by_equality_inequality_and_presence() {
        let pod = serde_json::json!({"metadata": {"labels": {"app": "web", "tier": "1"}}});
        for (selector, selected) in [
            ("", true),
            ("app=web", true),
            ("app==web,tier=1", true),
            ("app!=web", false),
            ("tier", true),
            ("zone", false),
            ("app=db", false),
        ] {
            assert_eq!(selects(selector, &pod), selected, "{selector}");
        }
    }
}
