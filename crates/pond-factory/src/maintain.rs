//! Periodic upkeep of a pond: one pass of `pond maintain`, or of `follow`'s periodic
//! maintenance, in one transaction.
//!
//! A pass removes retired data files and the files of removed nodes (when no snapshot is open),
//! folds old history ([`pond_store::Transaction::fold_history`]), runs the factory nodes'
//! [`crate::Configured::maintain`] (retention: files gone from their host that no factory node
//! still needs), and compacts small frames within a work budget: the files changed since the
//! last finished pass, or every file under a given path. A caller that wants everything done
//! repeats passes (committing in between, so other writers get the lock) until one reports
//! `done`.

use crate::runner::{RunError, Runner};
use crate::{BoxError, Configured, MaintainContext};
use pond_store::{
    CompactLimits, CompactReport, FoldReport, GarbageReport, Node, NodeKind, PondPath, Transaction,
    View,
};
use serde::Serialize;

/// What a pass looks at besides history and garbage.
pub enum MaintainScope<'a> {
    /// Compact the files changed since the last finished pass; maintain every factory node.
    Changed,
    /// Compact every file at or below this path (walks it); maintain every factory node.
    Under(&'a PondPath),
    /// Compact the changed files; maintain only this factory node (a `follow`'s own).
    Node {
        node: &'a Node,
        configured: &'a dyn Configured,
    },
}

/// What one pass did.
#[derive(Debug, Default, Serialize)]
pub struct MaintainPass {
    /// The pass's transaction, when it changed anything.
    pub txn: Option<u64>,
    pub fold: FoldReport,
    pub garbage: GarbageReport,
    /// Files compacted, by path.
    pub compacted: Vec<(String, CompactReport)>,
    /// What each factory node's upkeep did (`path: summary`), or why it failed.
    pub nodes: Vec<String>,
    /// Compaction finished: nothing is left for another pass.
    pub done: bool,
    /// Retired data files and removed nodes left for a later writer to delete.
    pub garbage_left: u64,
}

impl Runner<'_> {
    /// One maintenance pass in one transaction (see the module docs).
    pub fn maintain_pass(
        &self,
        limits: &CompactLimits,
        scope: MaintainScope<'_>,
    ) -> Result<MaintainPass, RunError> {
        let mut txn = self.pond.begin(self.argv.clone(), self.lock_timeout)?;
        let mut pass = MaintainPass {
            garbage: txn.collect_garbage()?,
            fold: txn.fold_history()?,
            ..MaintainPass::default()
        };
        match &scope {
            MaintainScope::Node { node, configured } => {
                let upkeep = self
                    .maintain_node(&mut txn, node, *configured)
                    .map_err(|source| RunError::Failed {
                        path: node.path.to_string(),
                        source,
                    })?;
                if let Some(summary) = upkeep {
                    pass.nodes.push(format!("{}: {summary}", node.path));
                }
            }
            MaintainScope::Changed | MaintainScope::Under(_) => {
                pass.nodes = self.maintain_all(&mut txn)?;
            }
        }
        let compacted = match scope {
            MaintainScope::Under(under) => {
                let files = txn.compact_all(under, limits)?;
                let done = files.is_empty();
                pond_store::CompactPass { files, done }
            }
            MaintainScope::Changed | MaintainScope::Node { .. } => txn.compact_changed(limits)?,
        };
        pass.done = compacted.done;
        pass.garbage_left = txn.pending_garbage()?;
        pass.compacted = compacted
            .files
            .into_iter()
            .map(|(path, report)| (path.to_string(), report))
            .collect();
        let summary = format!(
            "maintain: {} file(s) compacted, {} transaction(s) and {} version(s) folded, {} \
             data file(s) removed{}",
            pass.compacted.len(),
            pass.fold.txns_folded,
            pass.fold.versions_folded,
            pass.garbage.removed_files,
            if pass.nodes.is_empty() {
                String::new()
            } else {
                format!("; {}", pass.nodes.join("; "))
            }
        );
        pass.txn = txn.commit(&summary)?;
        Ok(pass)
    }

    /// Runs every factory node's upkeep in `txn`; a node that fails is reported, not fatal.
    fn maintain_all(&self, txn: &mut Transaction) -> Result<Vec<String>, RunError> {
        let mut out = Vec::new();
        for (node, stored) in txn.factory_nodes()? {
            if self.registry.get(&stored.factory).is_none() {
                continue;
            }
            let result = self
                .configure(&node, &stored.factory, &stored.config)
                .and_then(|configured| self.maintain_node(txn, &node, configured.as_ref()));
            match result {
                Ok(Some(summary)) => out.push(format!("{}: {summary}", node.path)),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(node = %node.path, "upkeep failed: {e}");
                    out.push(format!("{}: upkeep failed: {e}", node.path));
                }
            }
        }
        Ok(out)
    }

    /// Runs `node`'s upkeep in `txn`.
    fn maintain_node(
        &self,
        txn: &mut Transaction,
        node: &Node,
        configured: &dyn Configured,
    ) -> Result<Option<String>, BoxError> {
        let unsent = |view: &View, files: &[Node]| self.unsent(view, files);
        let mut ctx = MaintainContext {
            node,
            txn,
            unsent: &unsent,
        };
        configured.maintain(&mut ctx)
    }

    /// Which of `files` some factory node of the pond has not finished reading. A node whose
    /// factory or config cannot answer counts as needing them all.
    fn unsent(&self, view: &View, files: &[Node]) -> Vec<bool> {
        let mut needed = vec![false; files.len()];
        let nodes = match view.factory_nodes() {
            Ok(nodes) => nodes,
            Err(e) => {
                tracing::warn!("listing factory nodes: {e}; keeping every file");
                return vec![true; files.len()];
            }
        };
        for (node, stored) in nodes {
            if node.kind != NodeKind::Factory {
                continue;
            }
            let answer = self
                .configure(&node, &stored.factory, &stored.config)
                .and_then(|configured| configured.unsent(view, &node, files));
            match answer {
                Ok(unsent) if unsent.len() == files.len() => {
                    for (need, unsent) in needed.iter_mut().zip(unsent) {
                        *need |= unsent;
                    }
                }
                Ok(_) => needed.iter_mut().for_each(|n| *n = true),
                Err(e) => {
                    tracing::warn!(
                        node = %node.path,
                        "cannot tell which files it still reads ({e}); retention keeps them all"
                    );
                    needed.iter_mut().for_each(|n| *n = true);
                }
            }
        }
        needed
    }
}
