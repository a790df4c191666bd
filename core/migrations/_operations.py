"""Operations the migrations share. Not a migration itself (the leading underscore keeps
Tortoise's loader from reading it as one)."""

from typing import Any

from tortoise.migrations import operations as ops


class AddFieldKeepingRows(ops.AddField):
    """Adds a NOT NULL column to a table that may already hold rows. The column gets `db_default`
    at the database level, so that existing rows take that value instead of the upgrade failing;
    the recorded state keeps the field as the model declares it (a Python default only), so
    that later migrations compare against the model."""

    def __init__(self, model_name: str, name: str, field: Any, db_default: Any) -> None:
        super().__init__(model_name, name, field)
        self.db_default = db_default

    async def database_forward(self, app_label, old_state, new_state, state_editor=None):  # type: ignore[no-untyped-def]
        if state_editor is None:
            return
        model = new_state.apps.get_model(f"{app_label}.{self.model_name}")
        field = model._meta.fields_map[self.name]
        declared = field.db_default
        field.db_default = self.db_default
        try:
            await state_editor.add_field(model, self.name)
        finally:
            field.db_default = declared


class RunSQLOn(ops.RunSQL):
    """SQL for one engine only (its `capabilities.dialect`: "postgres" or "sqlite")."""

    def __init__(self, dialect: str, sql: Any, reverse_sql: Any) -> None:
        super().__init__(sql, reverse_sql=reverse_sql)
        self.dialect = dialect

    async def database_forward(self, app_label, old_state, new_state, state_editor=None):  # type: ignore[no-untyped-def]
        if state_editor is not None and state_editor.client.capabilities.dialect == self.dialect:
            await super().database_forward(app_label, old_state, new_state, state_editor)

    async def database_backward(self, app_label, old_state, new_state, state_editor=None):  # type: ignore[no-untyped-def]
        if state_editor is not None and state_editor.client.capabilities.dialect == self.dialect:
            await super().database_backward(app_label, old_state, new_state, state_editor)


class UncheckReference(ops.AlterField):
    """Turns a foreign key's database check off (`db_constraint=False`). PostgreSQL drops the
    column's constraint (and adds it back on the way down). SQLite keeps it: its way of altering
    a column (a new table, rows copied, the old one dropped) would lose the table's unique
    constraints and indexes, and its checks cost little."""

    async def database_forward(self, app_label, old_state, new_state, state_editor=None):  # type: ignore[no-untyped-def]
        if state_editor is not None and state_editor.client.capabilities.dialect == "postgres":
            table, column, _, _ = self._reference(app_label, old_state)
            await state_editor.client.execute_script(_DROP_REFERENCE_CHECK.format(table=table, column=column))

    async def database_backward(self, app_label, old_state, new_state, state_editor=None):  # type: ignore[no-untyped-def]
        if state_editor is not None and state_editor.client.capabilities.dialect == "postgres":
            table, column, target, on_delete = self._reference(app_label, old_state)
            await state_editor.client.execute_script(
                f'ALTER TABLE "{table}" ADD FOREIGN KEY ("{column}") REFERENCES "{target}" ("id") ON DELETE {on_delete}'
            )

    def _reference(self, app_label: str, state: Any) -> tuple[str, str, str, str]:
        """The table and column of the reference, the table it points to, and its ON DELETE."""
        model = state.apps.get_model(f"{app_label}.{self.model_name}")
        field = model._meta.fields_map[self.name]
        return model._meta.db_table, field.source_field, field.related_model._meta.db_table, str(field.on_delete)


# The constraint's name is whatever the schema gave it, so it is looked up by its column.
_DROP_REFERENCE_CHECK = """
DO $$
DECLARE
    found record;
BEGIN
    FOR found IN
        SELECT c.conname FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
        WHERE c.contype = 'f' AND c.conrelid = '"{table}"'::regclass AND a.attname = '{column}'
    LOOP
        EXECUTE format('ALTER TABLE "{table}" DROP CONSTRAINT %I', found.conname);
    END LOOP;
END $$
"""
