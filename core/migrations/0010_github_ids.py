from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields


class WidenInteger(ops.AlterField):
    """INT to BIGINT. SQLite's integers are 64-bit already, and its way of altering a column
    (a new table, rows copied, the old one dropped) would lose the table's unique constraints
    and indexes: there it changes only the recorded state."""

    async def database_forward(self, app_label, old_state, new_state, state_editor=None):
        if state_editor is not None and state_editor.client.capabilities.dialect == "sqlite":
            return
        await super().database_forward(app_label, old_state, new_state, state_editor)

    async def database_backward(self, app_label, old_state, new_state, state_editor=None):
        if state_editor is not None and state_editor.client.capabilities.dialect == "sqlite":
            return
        await super().database_backward(app_label, old_state, new_state, state_editor)


class Migration(migrations.Migration):
    dependencies = [('milestones', '0009_upload_tokens')]

    initial = False

    operations = [
        WidenInteger(
            model_name='Defect',
            name='number',
            field=fields.BigIntField(),
        ),
        WidenInteger(
            model_name='Milestone',
            name='github_number',
            field=fields.BigIntField(null=True),
        ),
        WidenInteger(
            model_name='PullRequest',
            name='number',
            field=fields.BigIntField(),
        ),
    ]
