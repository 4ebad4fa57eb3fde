//! The room a node's answer has: one target per attested identity, and at most a node's worth of
//! collectors at their caps (`kube_metrics_contract::limits`). The relay's merge and the node
//! collector's answer both take their pods in through it.

use std::collections::HashSet;

use kube_metrics_contract::limits::{MAX_ANSWER_BYTES, MAX_ANSWER_SERIES};

use super::{Identity, Rejected};

/// What an answer holds so far: the identities it serves, and their series and bytes.
#[derive(Debug, Default)]
pub struct Room<'a> {
    served: HashSet<&'a Identity>,
    series: usize,
    bytes: usize,
}

// === impl Room ===

impl<'a> Room<'a> {
    /// Whether a target under `identity` may still be served: only the first one under an
    /// identity is (a pod recreated under its old name is left out).
    pub fn unserved(&self, identity: &Identity) -> Result<(), Rejected> {
        if self.served.contains(identity) {
            return Err(Rejected::DuplicateIdentity);
        }
        Ok(())
    }

    /// Takes a target of `series` series and `bytes` bytes in under `identity`, unless the answer
    /// would then hold more than a node's worth of collectors at their caps.
    pub fn take(
        &mut self,
        identity: &'a Identity,
        series: usize,
        bytes: usize,
    ) -> Result<(), Rejected> {
        let (series, bytes) = (self.series + series, self.bytes + bytes);
        if series > MAX_ANSWER_SERIES || bytes > MAX_ANSWER_BYTES {
            return Err(Rejected::AnswerFull);
        }
        self.served.insert(identity);
        (self.series, self.bytes) = (series, bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The room: one target per identity, a node's worth of series and bytes.
    use super::*;

    #[test]
    fn takes_each_identity_once_within_a_nodes_worth() {
        let ids: Vec<Identity> = (0..4)
            .map(|i| Identity {
                namespace: "ns".into(),
                pod: format!("virt-launcher-{i}"),
            })
            .collect();
        let mut room = Room::default();
        assert_eq!(room.take(&ids[0], MAX_ANSWER_SERIES - 1, 10), Ok(()));
        assert_eq!(room.unserved(&ids[0]), Err(Rejected::DuplicateIdentity));
        assert_eq!(room.unserved(&ids[1]), Ok(()));
        assert_eq!(room.take(&ids[1], 2, 10), Err(Rejected::AnswerFull));
        assert_eq!(room.take(&ids[1], 1, MAX_ANSWER_BYTES - 20), Ok(()));
        assert_eq!(room.take(&ids[2], 0, 11), Err(Rejected::AnswerFull));
        assert_eq!(room.take(&ids[2], 0, 10), Ok(()));
        assert_eq!(
            room.unserved(&ids[3]),
            Ok(()),
            "a refused target is not served"
        );
    }
}
