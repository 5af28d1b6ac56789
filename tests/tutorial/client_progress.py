# The tutorial's download client with a progress bar and the elapsed time ("增加进度条和
# 下载时间"), faithfully, with all four of its processBar versions. See README.md for
# what changed.
# Usage: client_progress.py HOST PORT [equals|third|plane|colour]   (default: colour)
import json
import struct
import socket
import sys
import time
from Prompt import Prompt
def processBar_equals(num, total): # 进度条
    rate = num / total
    rate_num = int(rate * 100)
    if rate_num == 100:
        r = '\r%s>%d%%\n' % ('=' * rate_num, rate_num,)
    else:
        r = '\r%s>%d%%' % ('=' * rate_num, rate_num,)
    sys.stdout.write(r)
    sys.stdout.flush
def processBar_third(num, total): # 进度条
    rate = num / total
    rate_num = int(rate * 100)
    if rate_num == 100:
        r = '\r%s>%d%%\n' % ('=' * int(rate_num / 3), rate_num,) # 控制等号输出数量,除以3,表示显示1/3
    else:
        r = '\r%s>%d%%' % ('=' * int(rate_num / 3), rate_num,)
    sys.stdout.write(r)
    sys.stdout.flush
def processBar_plane(num, total): # 进度条
    rate = num / total
    rate_num = int(rate * 100)
    pretty = '✈'
    if rate_num == 100:
        r = '\r\033[32m{}\033[0m{}%\n'.format(pretty * int(rate_num / 5), rate_num,)
    else:
        r = '\r\033[32m{}\033[0m{}%'.format(pretty * int(rate_num / 5), rate_num,)
    sys.stdout.write(r)
    sys.stdout.flush
def processBar_colour(num, total): # 进度条
    rate = num / total
    rate_num = int(rate * 100)
    pretty = Prompt.random_color('✈') # 随机换色
    if rate_num == 100:
        r = '\r{}{}%\n'.format(pretty * int(rate_num / 5), rate_num,)
    else:
        r = '\r{}{}%'.format(pretty * int(rate_num / 5), rate_num,)
    sys.stdout.write(r)
    sys.stdout.flush
# changed: the tutorial edits processBar in place; here its version is an argument.
processBar = globals()['processBar_' + (sys.argv[3] if len(sys.argv) > 3 else 'colour')]
start_time = time.time() # 开始时间
sk = socket.socket()
sk.connect((sys.argv[1], int(sys.argv[2])))  # changed: was ('127.0.0.1',9000)
dic_len = sk.recv(4)
dic_len = struct.unpack('i',dic_len)[0]
dic = sk.recv(dic_len)
str_dic = dic.decode('utf-8')
dic = json.loads(str_dic)
with open(dic['filename'],'wb') as f: # 使用wb更严谨一些,虽然可以使用ab
    content_size = 0
    while True:
        content = sk.recv(4096)
        f.write(content) # 写入文件
        content_size += len(content) # 接收大小
        processBar(content_size,dic['filesize']) # 执行进度条函数
        if content_size == dic['filesize']:break # 当接收的总大小等于文件大小时,终止循环
sk.close() # 关闭连接
end_time = time.time() # 结束时间
print('本次下载花费了{}秒'.format(end_time - start_time))
