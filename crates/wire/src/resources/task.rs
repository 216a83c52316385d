//! `<Task>` (em_rest/get_tasks_id.md, em_rest/post_vmrestorepoints_id_actionrestore.md).

use super::resource_layer;
use super::Link;
use crate::node::{attr, child, elem, Node, Representation};

/// State of a task (em_rest/get_tasks_id.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// The operation is in progress.
    Running,
    /// Finished on the backup server, data not yet collected.
    OperationFinished,
    /// Finished and collected.
    Finished,
}

impl TaskState {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Running => "Running",
            TaskState::OperationFinished => "OperationFinished",
            TaskState::Finished => "Finished",
        }
    }
}

/// `<Result Success="true"><Message>Ok</Message></Result>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskResult {
    /// Whether the operation succeeded.
    pub success: bool,
    /// Result message, e.g. `Ok`.
    pub message: String,
}

/// A task created for an asynchronous operation, e.g. `task-1` for a restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// URL of the task.
    pub href: String,
    /// `Delete` → the task; `Related` → the restore session once it exists.
    pub links: Vec<Link>,
    /// Task ID, e.g. `task-1`.
    pub task_id: String,
    /// State of the task.
    pub state: TaskState,
    /// Operation name, e.g. `StartVMRestore`.
    pub operation: String,
    /// Result; absent while the task is running.
    pub result: Option<TaskResult>,
}

impl Representation for TaskResult {
    fn to_node(&self) -> Node<'_> {
        let TaskResult { success, message } = self;
        // Element first, attribute after: `{"Message":"Ok","Success":true}` (JSON.md A4).
        Node::new("Result").layer(vec![elem("Message", message), attr("Success", *success)])
    }
}

impl Representation for Task {
    fn to_node(&self) -> Node<'_> {
        let Task {
            href,
            links,
            task_id,
            state,
            operation,
            result,
        } = self;
        // JSON `TaskId, State, Operation, Result, Links, Href, Type` (JSON.md A5, B3).
        Node::new("Task")
            .layer(vec![
                elem("TaskId", task_id),
                elem("State", state.as_str()),
                elem("Operation", operation),
                child("Result", result.as_ref().map(Representation::to_node)),
            ])
            .layer(resource_layer(links, href, "Task"))
    }
}
