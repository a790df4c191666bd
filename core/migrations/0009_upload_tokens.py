from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('milestones', '0008_shared_answers')]

    initial = False

    operations = [
        ops.CreateModel(
            name='UploadToken',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('repository', fields.ForeignKeyField('milestones.Repository', source_field='repository_id', db_constraint=True, to_field='id', related_name='upload_tokens', on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(max_length=100)),
                ('plans', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('prefix', fields.CharField(max_length=16)),
                ('created_by', fields.CharField(max_length=100)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('last_used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('revoked_by', fields.CharField(null=True, max_length=100)),
                ('active_name', fields.CharField(null=True, max_length=100)),
                ('window_started_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('window_count', fields.IntField(default=0)),
            ],
            options={'table': 'upload_token', 'app': 'milestones', 'unique_together': (('repository', 'active_name'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Launch',
            name='content_digest',
            field=fields.CharField(null=True, max_length=64),
        ),
    ]
