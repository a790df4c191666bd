from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('milestones', '0003_checks')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ChannelLink',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('team_id', fields.CharField(max_length=32)),
                ('channel_id', fields.CharField(max_length=32)),
                ('repository', fields.ForeignKeyField('milestones.Repository', source_field='repository_id', db_constraint=True, to_field='id', related_name='channel_links', on_delete=OnDelete.CASCADE)),
                ('linked_by', fields.CharField(max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'channel_link', 'app': 'milestones', 'unique_together': (('team_id', 'channel_id'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
