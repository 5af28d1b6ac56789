# The tutorial's big-file download client ("大文件传输", client.py), faithfully: it
# writes the file under the name the server chose, in the current directory. See
# README.md for what changed.
# Usage: client_download.py HOST PORT
import json
import struct
import socket
import sys
sk = socket.socket()
sk.connect((sys.argv[1], int(sys.argv[2])))  # changed: was ('127.0.0.1',9000)
dic_len = sk.recv(4)
dic_len = struct.unpack('i',dic_len)[0]
dic = sk.recv(dic_len)
str_dic = dic.decode('utf-8')
dic = json.loads(str_dic)
with open(dic['filename'],'wb') as f: # 使用wb更严谨一些,虽然可以使用ab
    while dic['filesize']:
        content = sk.recv(4096) #这边的4096,可以不用和server对应,改成1024,也可以
        dic['filesize'] -= len(content)
        f.write(content)
sk.close()
